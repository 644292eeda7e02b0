#!/usr/bin/env bash
# Build the dnslb package with nfpm: dist/dnslb_VERSION_ARCH.deb (and an
# .rpm with --rpm). The version is the newest v* tag, else
# 0.0.0~gitYYYYMMDDhhmmss.COMMIT (the commit time, so later commits sort
# higher). The binary is stamped with it, the commit and the commit's
# time (a rebuild of a commit is the same binary). Needs Go and git;
# nfpm runs as a Go tool at a pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

packagers=(deb)
if [ "${1:-}" = --rpm ]; then packagers+=(rpm); fi

commit=$(git rev-parse HEAD)
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
if tag=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	version=${tag#v}
	if [[ $version == *-* ]]; then
		# 1.2.0-3-gabc (3 commits past v1.2.0): 1.2.0+git3.gabc sorts
		# after 1.2.0, and a "-" would start the Debian revision.
		rest=${version#*-}
		version="${version%%-*}+git${rest//-/.}"
	fi
else
	version="0.0.0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).${commit:0:12}"
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	version="$version+dirty"
fi

stage=dist/stage
rm -f dist/*.deb dist/*.rpm
rm -rf "$stage"
mkdir -p "$stage/man" "$stage/completions"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date" \
	-o "$stage/dnslb" ./cmd/dnslb
for page in contrib/man/*.1; do
	gzip -9n <"$page" >"$stage/man/$(basename "$page").gz"
done
"$stage/dnslb" completion bash >"$stage/completions/dnslb.bash"
"$stage/dnslb" completion zsh >"$stage/completions/_dnslb"
"$stage/dnslb" completion fish >"$stage/completions/dnslb.fish"

DNSLB_ARCH=$(go env GOARCH)
export DNSLB_VERSION=$version DNSLB_ARCH
for p in "${packagers[@]}"; do
	go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 package \
		--config contrib/nfpm.yaml --packager "$p" --target dist/
done
ls -l dist/dnslb*
