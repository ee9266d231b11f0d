#!/usr/bin/env bash
# gen-testdata.sh encodes the small, genuine media files that pkg/media's tests
# probe. The outputs are committed; rerun this script only to regenerate them.
#
# Every video is 1 s long, 1 frame per second of a test pattern at a very low
# bitrate, so the whole set stays far below 1 MiB while carrying real
# ftyp/moov/mdat structure and real H.264/HEVC sample descriptions.
set -euo pipefail

cd "$(dirname "$0")/.."
out=testdata/media
mkdir -p "$out"

if ! command -v ffmpeg >/dev/null 2>&1; then
	echo "ffmpeg missing: installing Debian's package" >&2
	sudo_cmd=""
	if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
	$sudo_cmd apt-get update
	$sudo_cmd apt-get install -y --no-install-recommends ffmpeg
fi

ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# video SIZE CODEC-ARGS... OUTPUT: 1 s of a solid-colour source (compresses to
# almost nothing), 2 frames per second, no audio.
video() {
	local size=$1 outfile=$2
	shift 2
	ff -f lavfi -i "color=c=navy:s=${size}:r=2:d=1" -an -pix_fmt yuv420p "$@" "$out/$outfile"
}

h264=(-c:v libx264 -preset ultrafast -crf 51 -g 2)
hevc=(-c:v libx265 -preset ultrafast -x265-params log-level=error:keyint=2 -crf 51 -tag:v hvc1)

video 3840x2160 uhd-h264.mp4 "${h264[@]}"
video 3840x2160 uhd-hevc-hvc1.mp4 "${hevc[@]}"
video 2160x3840 uhd-portrait-h264.mp4 "${h264[@]}"
# Full HD with a silent AAC track stored first, so the prober must pick the
# video track rather than the first one.
ff -f lavfi -i "color=c=navy:s=1920x1080:r=2:d=1" -f lavfi -i "anullsrc=r=8000:cl=mono" \
	-map 1:a -map 0:v -t 1 -pix_fmt yuv420p "${h264[@]}" -c:a aac -b:a 8k "$out/fhd-h264.mp4"
video 3840x2160 uhd-faststart.mp4 "${h264[@]}" -movflags +faststart
# Without faststart ffmpeg writes moov after mdat: the layout a prober must
# seek past.
video 3840x2160 uhd-moov-at-end.mp4 "${h264[@]}"

# Audio only: an MP4 without any video track.
ff -f lavfi -i "anullsrc=r=8000:cl=mono" -t 1 -c:a aac -b:a 8k "$out/audio-only.mp4"

# Thumbnails.
ff -f lavfi -i "testsrc=s=640x360:d=1" -frames:v 1 -q:v 10 "$out/thumb.jpg"
ff -f lavfi -i "color=c=navy:s=320x180:d=1" -frames:v 1 "$out/thumb.png"
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
if grep -q libwebp <<<"$encoders"; then
	ff -f lavfi -i "color=c=navy:s=400x224:d=1" -frames:v 1 -c:v libwebp "$out/thumb.webp"
else
	echo "ffmpeg has no libwebp encoder: skipping thumb.webp" >&2
fi

du -ch "$out"/* | tail -1
