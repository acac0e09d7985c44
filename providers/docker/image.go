package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// The built image: the binary at /appfleet, /data owned by runtimeUID, that user.
const (
	imageRepo  = "appfleet-runtime"
	runtimeUID = 65532 // the "nonroot" id distroless images use; nothing in the image maps it to a name
	binaryPath = "/appfleet"
	dataDir    = "/data"
)

// binaryInfo is what the provider knows of the appfleet binary it would put into an image.
type binaryInfo struct {
	path   string
	digest string // hex sha256
	arch   string // GOARCH of a static linux ELF, "" when it is not one
	why    string // why it is not one
}

// inspectBinary hashes the binary and tells whether it is a static Linux executable, and for which
// architecture.
func inspectBinary(path string) (binaryInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("read the appfleet binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return binaryInfo{}, fmt.Errorf("read the appfleet binary %s: %w", path, err)
	}
	bi := binaryInfo{path: path, digest: hex.EncodeToString(h.Sum(nil))}
	ef, err := elf.NewFile(f)
	if err != nil {
		bi.why = "it is not a Linux (ELF) executable"
		return bi, nil
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			bi.why = "it is dynamically linked (build it with CGO_ENABLED=0)"
			return bi, nil
		}
	}
	switch ef.Machine {
	case elf.EM_X86_64:
		bi.arch = "amd64"
	case elf.EM_AARCH64:
		bi.arch = "arm64"
	case elf.EM_386:
		bi.arch = "386"
	case elf.EM_ARM:
		bi.arch = "arm"
	case elf.EM_PPC64:
		bi.arch = "ppc64le"
	case elf.EM_S390:
		bi.arch = "s390x"
	case elf.EM_RISCV:
		bi.arch = "riscv64"
	default:
		bi.why = fmt.Sprintf("it is built for %s", ef.Machine)
	}
	return bi, nil
}

// defaultImage is the tag of the image built from this binary.
func (b binaryInfo) defaultImage() string { return imageRepo + ":" + b.digest[:12] }

// imageBuilds makes concurrent applies on one host build an image once.
type imageBuilds struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (ib *imageBuilds) lock(key string) func() {
	ib.mu.Lock()
	if ib.locks == nil {
		ib.locks = map[string]*sync.Mutex{}
	}
	l, ok := ib.locks[key]
	if !ok {
		l = &sync.Mutex{}
		ib.locks[key] = l
	}
	ib.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// imageID returns the id of ref on the host, or "" when the host does not have it.
func imageID(ctx context.Context, h *host, ref string) (string, error) {
	img, err := h.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return img.ID, nil
}

// ensureImage returns the id of the image the environment runs: the declared one, which must exist on
// the host, or the one built from this binary, built when the host lacks it.
func (p *Provider) ensureImage(ctx context.Context, h *host, declared string) (ref, id string, err error) {
	if declared != "" {
		id, err := imageID(ctx, h, declared)
		if err != nil {
			return "", "", err
		}
		if id == "" {
			return "", "", fmt.Errorf("image %s (spec.docker.image) does not exist on docker host %s, and appfleet never pulls: "+
				"build or load it there (docker build / docker load), or leave image out to use one built from this appfleet binary", declared, h.display())
		}
		return declared, id, nil
	}
	bi, err := p.binary()
	if err != nil {
		return "", "", err
	}
	ref = bi.defaultImage()
	unlock := p.builds.lock(h.display() + "|" + ref)
	defer unlock()
	if id, err := imageID(ctx, h, ref); err != nil || id != "" {
		return ref, id, err
	}
	if err := p.checkArch(ctx, h, bi); err != nil {
		return "", "", err
	}
	if err := buildImage(ctx, h, bi, ref); err != nil {
		return "", "", fmt.Errorf("build image %s on docker host %s: %w", ref, h.display(), err)
	}
	id, err = imageID(ctx, h, ref)
	if err == nil && id == "" {
		err = fmt.Errorf("image %s is missing right after it was built", ref)
	}
	return ref, id, err
}

// checkArch refuses a binary that cannot run on the host: it would build an image that only fails later.
func (p *Provider) checkArch(ctx context.Context, h *host, bi binaryInfo) error {
	v, err := h.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("docker host %s: %w", h.display(), err)
	}
	want := v.Os + "/" + v.Arch
	if bi.arch == "" || v.Os != "linux" || bi.arch != v.Arch {
		why := bi.why
		if why == "" {
			why = "it is built for linux/" + bi.arch
		}
		return fmt.Errorf("this appfleet binary (%s) cannot run on docker host %s (%s): %s; "+
			"set spec.docker.image to an image that holds appfleet built for %s at %s "+
			"(CGO_ENABLED=0 GOOS=%s GOARCH=%s go build ./cmd/appfleet)", bi.path, h.display(), want, why, want, binaryPath, v.Os, v.Arch)
	}
	return nil
}

// dockerfile builds the runtime's image with the legacy builder, which needs nothing from a registry:
// FROM scratch, the binary, and data.tar, whose one directory entry makes /data owned by the runtime's
// user (ADD keeps the owners of a local tar; COPY would make it root's, and there is no shell to chown).
const dockerfile = `FROM scratch
COPY appfleet ` + binaryPath + `
ADD data.tar /
ENV TMPDIR=/data/tmp
USER 65532:65532
ENTRYPOINT ["` + binaryPath + `"]
`

// buildImage sends the build context, streamed from memory and the binary's file, and reads the build's
// messages; an error message in the stream is the build's error.
func buildImage(ctx context.Context, h *host, bi binaryInfo, ref string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, bi)) }()
	res, err := h.cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{ref},
		Version:     build.BuilderV1,
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{labelBinary: bi.digest},
	})
	if err != nil {
		_ = pr.CloseWithError(err)
		return err
	}
	defer res.Body.Close()
	var last []string
	dec := json.NewDecoder(bufio.NewReader(res.Body))
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the build's output: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			m.Error = m.ErrorDetail.Message
		}
		if m.Error != "" {
			if len(last) > 0 {
				return fmt.Errorf("%s (after: %s)", m.Error, strings.Join(last, " | "))
			}
			return errors.New(m.Error)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			last = append(last, s)
			if len(last) > 3 {
				last = last[1:]
			}
		}
	}
}

// writeContext writes the build context: the Dockerfile, the binary and data.tar.
func writeContext(w io.Writer, bi binaryInfo) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	add := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add("Dockerfile", 0o644, []byte(dockerfile)); err != nil {
		return err
	}
	data, err := dataTar(now)
	if err != nil {
		return err
	}
	if err := add("data.tar", 0o644, data); err != nil {
		return err
	}
	f, err := os.Open(bi.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "appfleet", Mode: 0o755, Size: st.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	return tw.Close()
}

// dataTar is a tar of the image's writable directories, owned by the runtime's user.
func dataTar(now time.Time) ([]byte, error) {
	var b strings.Builder
	tw := tar.NewWriter(&b)
	for _, d := range []string{"data/", "data/tmp/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o700, Uid: runtimeUID, Gid: runtimeUID, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
