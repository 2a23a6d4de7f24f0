"""Small files shipped with minivgg (installed as ``minivgg.resources``); never large downloads."""
