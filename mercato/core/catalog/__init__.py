"""The catalogue shared by projects and services: the category tree of software work.
Registered as the built-in plugin ``catalog``."""
