// Package devstack starts, stops and restarts the real components that the integration tests
// (internal/testenv) and the benchmark harness (bench/) run on loopback: the Temporal dev server,
// local-kms, Mailpit and goaws from the repository's bin/ directory, each one child process
// handled the same way (Proc, restartable). It also reads a process's CPU time and
// memory from /proc, for the benchmark's accounting.
//
// A component keeps its state across a restart: the same SQLite file or KMS data directory and
// the same ports, so a client configured before a kill still reaches it afterwards. That is what
// the benchmark's chaos mode needs, and what a test of recovery needs.
//
// Nothing here downloads a binary: a missing one is an error that says to run `make tools`.
package devstack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
)

// RepoRoot returns the nearest directory at or above the working directory that holds go.mod:
// `go test` runs in the package's directory and `go run ./bench` in the repository's.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run inside the repository")
		}
		dir = parent
	}
}

// Binary returns <repository root>/bin/<name>, or an error that names the missing path and says
// how to install it.
func Binary(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("cannot find bin/%s: %w", name, err)
	}
	exe := filepath.Join(root, "bin", name)
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	if info, err := os.Stat(exe); err != nil || info.IsDir() {
		return "", fmt.Errorf("%s is missing: run `make tools` in %s to install it (tests and the benchmark never download binaries)", exe, root)
	}
	return exe, nil
}

// binaryOr returns path, or Binary(name) when path is empty.
func binaryOr(path, name string) (string, error) {
	if path != "" {
		return path, nil
	}
	return Binary(name)
}

// FreePort returns a loopback port nobody listens on right now. Like the Temporal SDK's helper,
// it leaves the port in TIME_WAIT so that the kernel does not hand it to the next caller at once;
// the components bind it anyway (they set SO_REUSEADDR).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free loopback port: %w", err)
	}
	defer l.Close()
	if runtime.GOOS == "linux" {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			if s, err := l.Accept(); err == nil {
				_ = s.Close() // the server side closes first: its end sits in TIME_WAIT
			}
			_ = c.Close()
		}
	}
	return l.Addr().(*net.TCPAddr).Port, nil
}

// loopback is host:port on 127.0.0.1.
func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
