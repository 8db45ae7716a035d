"""What only the notebooks need, on top of the core: the setup cell and claim checks (``notebook``), the ELBO lab
of notebook 02 (``elbo_lab``), the true posterior of a 2-D VAE on a grid (``posterior``), plots (``plotting``),
architecture drawings (``architecture``) and the PNGs of figures/ (``figures``). Imported on first use: each
module pulls in matplotlib."""
