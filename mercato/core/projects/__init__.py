"""Projects and proposals: clients post work, developers bid, clients pick one. Registered
as the built-in plugin ``projects``."""
