"""Devices: what each class of device is (`profiles`, figures sourced in `devices.toml`)
and what its work costs in joules (`energy`)."""
