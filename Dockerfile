# The service's image: the web, worker and scheduler processes all run it (see
# docker-compose.yml and Procfile for each one's command).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY setup.cfg pyproject.toml README.md wsgi.py ./
COPY billing_app ./billing_app
COPY paddle_client ./paddle_client
COPY migrations ./migrations
RUN pip install .
USER nobody
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "wsgi:app"]
