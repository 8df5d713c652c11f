"""Our media store: rehosted item images, content-addressed (a local directory now; S3 later)."""
