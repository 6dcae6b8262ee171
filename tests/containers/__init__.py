"""`make container-test`: the images built offline with podman and the compose services run as containers."""
