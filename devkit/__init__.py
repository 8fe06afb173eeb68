"""Developer and demo tooling: a real headless ComfyUI, the UI->API workflow converter, and the
generated tiny real-architecture models. Never imported by the ComfyUI pack itself."""
