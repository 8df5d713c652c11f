"""Our media store: rehosted item images, content-addressed (a local directory, or an S3-compatible bucket)."""
