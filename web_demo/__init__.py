"""The web demo: a static page that runs shipped .tflite files in the browser
(see docs/web_demo.md)."""
