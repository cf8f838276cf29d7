# fs/: see the module headers.
