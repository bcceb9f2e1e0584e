#!/bin/sh
# libiio's tools work against the kernel's IIO subsystem in the image.
modprobe industrialio || exit 1
out=$(iio_info -u local: 2>&1)
rc=$?
echo "$out" | head -n 3
[ $rc -eq 0 ] && echo "$out" | grep -q 'IIO context created with local backend'
