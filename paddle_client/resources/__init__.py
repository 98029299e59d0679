"""One module per Paddle resource. Every method returns Paddle's entity as a plain dict
(the `data` of the envelope, fields exactly as Paddle names them), or a lazy iterator of
them for list endpoints."""
