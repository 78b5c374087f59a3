"""Target-neutral specs: the model (`model`), one module per service, and the data every renderer shares.

Nothing here imports Pulumi or a provider SDK: each target's renderer (`sentinel_infra.docker`) turns these specs
into its own resources.
"""
