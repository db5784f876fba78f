#!/bin/bash
# Build kubelet, kube-apiserver and kube-controller-manager from an unpacked
# upstream Kubernetes tree (Debian's kubernetes .orig.tar.gz, which is the
# upstream release tree with vendor/), with an unpacked Go toolchain.
# Inputs (environment): SRC (tree), GOROOT, OUT (output dir), KUBE_VERSION,
# WORK (scratch dir). Static binaries, version stamped like a release build.
set -euo pipefail
: "${SRC:?}" "${GOROOT:?}" "${OUT:?}" "${KUBE_VERSION:?}" "${WORK:?}"
export GOROOT PATH="$GOROOT/bin:$PATH" GO111MODULE=off CGO_ENABLED=0
export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GOFLAGS=
mkdir -p "$GOPATH/src/k8s.io" "$OUT"
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

openapi=pkg/generated/openapi/zz_generated.openapi.go
if [ ! -s "$openapi" ]; then
  echo "generating $openapi"
  go build -o "$WORK/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  dirs=$(grep -R --include='*.go' -l '+k8s:openapi-gen=' ./ 2>/dev/null \
         | grep -vE '^\./(_output|staging)/' | xargs -n1 dirname | sort -u \
         | sed 's#^\./vendor/##; s#^\./#k8s.io/kubernetes/#' | paste -sd, -)
  "$WORK/openapi-gen" --input-dirs "$dirs" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-base "$GOPATH/src" -O zz_generated.openapi \
    --go-header-file hack/boilerplate/boilerplate.generatego.txt \
    --report-filename /dev/null
fi

major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
pkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
for cmd in kubelet kube-apiserver kube-controller-manager; do
  echo "building $cmd"
  go build -trimpath -ldflags "$ldflags" -o "$OUT/$cmd" "./cmd/$cmd"
done
"$OUT/kubelet" --version
