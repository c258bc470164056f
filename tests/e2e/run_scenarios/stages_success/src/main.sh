echo "main script ran"
