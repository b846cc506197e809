FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY catalog catalog
COPY scheduler scheduler
COPY printers printers
COPY quality quality
COPY api api
RUN pip install --no-cache-dir .
RUN useradd --system --home /var/lib/distrifab distrifab && mkdir -p /var/lib/distrifab && chown distrifab /var/lib/distrifab
USER distrifab
EXPOSE 8000
CMD ["distrifab", "serve", "--host", "0.0.0.0"]
