"""The method names (torch-free: the command line and the registries read them)."""

VAE_METHOD, DENOISER_METHOD, SEAMLESS = "seamless-vae", "seamless-denoiser", "seamless"
