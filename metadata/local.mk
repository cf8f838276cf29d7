# metadata/: see the module headers.
