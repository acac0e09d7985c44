package spec

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var memorySize = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// memoryUnits maps a lower-cased memory unit to its power of two.
var memoryUnits = map[string]uint{
	"": 0, "b": 0,
	"k": 10, "kb": 10, "ki": 10, "kib": 10,
	"m": 20, "mb": 20, "mi": 20, "mib": 20,
	"g": 30, "gb": 30, "gi": 30, "gib": 30,
	"t": 40, "tb": 40, "ti": 40, "tib": 40,
}

// minDockerMemory is the smallest memory limit the Docker engine accepts.
const minDockerMemory = 6 << 20

// MemoryBytes returns the memory limit in bytes: a number with an optional unit, b, k, m, g or t
// (Docker's, powers of 1024), optionally followed by "b", or Ki, Mi, Gi, Ti; 0 when Memory is empty.
func (d DockerSpec) MemoryBytes() (int64, error) {
	if d.Memory == "" {
		return 0, nil
	}
	m := memorySize.FindStringSubmatch(strings.TrimSpace(d.Memory))
	if m == nil {
		return 0, errors.New("want a number with an optional unit")
	}
	num, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, errors.New("want a number with an optional unit")
	}
	s, ok := memoryUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", m[2])
	}
	bytes := num * float64(uint64(1)<<s)
	if bytes > math.MaxInt64/2 {
		return 0, errors.New("too large")
	}
	if bytes < minDockerMemory {
		return 0, errors.New("below Docker's minimum of 6 MiB")
	}
	return int64(bytes), nil
}

// NanoCPUs returns the CPU limit in billionths of a CPU, as the Docker API takes it; 0 when CPUs is empty.
func (d DockerSpec) NanoCPUs() (int64, error) {
	if d.CPUs == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(d.CPUs), 64)
	if err != nil || math.IsNaN(f) {
		return 0, errors.New("want a number")
	}
	if f <= 0 || f > 1024 {
		return 0, errors.New("want more than 0 and at most 1024")
	}
	return int64(math.Round(f * 1e9)), nil
}

// PublishAddr splits Publish ("host:port" or "port") into the host (empty: every address) and port
// the runtime's management API is published on; port is 0 when Publish is empty.
func (d DockerSpec) PublishAddr() (host string, port int, err error) {
	if d.Publish == "" {
		return "", 0, nil
	}
	p := d.Publish
	if strings.Contains(p, ":") {
		host, p, err = net.SplitHostPort(p)
		if err != nil {
			return "", 0, errors.New("want host:port or a port")
		}
		if host != "" && host != "localhost" && net.ParseIP(host) == nil {
			return "", 0, fmt.Errorf("%q is not an IP address", host)
		}
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not from 1 to 65535", p)
	}
	return host, port, nil
}

// Path returns the file a TLS field names, resolved against dir (Source.Dir) when relative; "" stays "".
func (t DockerTLS) Path(file, dir string) string {
	if file == "" || filepath.IsAbs(file) || dir == "" {
		return file
	}
	return filepath.Join(dir, file)
}
