"""The small core: app factory, settings, plugins, database, events and (in later
releases) the marketplace's transactional heart."""
