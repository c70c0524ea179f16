"""Azure Storage adapters of the engine: tables, blobs, queues."""
