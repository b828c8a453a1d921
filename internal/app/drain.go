package app

import (
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// HTTPShutdownTimeout is how long the worker's listeners get to finish their
// requests once the worker has stopped: a pod's grace period must cover
// DPP_WORKER_STOP_TIMEOUT plus this (deploy/deploy_test.go checks the chart).
const HTTPShutdownTimeout = 5 * time.Second

// BeginDrain marks the worker as stopping: from now on /healthz answers 503
// "draining", so a readiness probe takes the pod out of service while the
// worker's Stop lets running activities finish (DPP_WORKER_STOP_TIMEOUT). The
// HTTP listener keeps serving until the worker has stopped: the probe must
// see the answer, and the Web UI may still be decoding through /codec/.
func (a *App) BeginDrain() {
	if a.draining.CompareAndSwap(false, true) {
		a.Log.Info("Draining: polling stops, running activities get DPP_WORKER_STOP_TIMEOUT to finish",
			zap.Duration("stopTimeout", a.Config.WorkerStopTimeout))
	}
}

// Draining reports whether BeginDrain was called.
func (a *App) Draining() bool { return a.draining.Load() }

// livez answers "ok" while the process serves HTTP, whatever the state of its
// dependencies: a liveness probe that restarted workers because PostgreSQL or
// Temporal is down would turn an outage into a restart storm; /healthz, the
// readiness probe, reports those.
func (a *App) livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// ProbeURL is where a probe on the same host reaches path on the listener
// bound to addr (DPP_HTTP_ADDR): a wildcard bind (":8088", "0.0.0.0:8088",
// "[::]:8088") is reached on loopback.
func ProbeURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// Probe GETs url and reports whether it answered 200: `worker -healthcheck`,
// the container image's HEALTHCHECK (the image has no shell and no curl).
func Probe(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &ProbeError{Status: resp.Status}
	}
	return nil
}

// ProbeError is a probe's non-200 answer.
type ProbeError struct{ Status string }

func (e *ProbeError) Error() string { return "answered " + e.Status }
