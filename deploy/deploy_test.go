// Package deploy_test keeps the deployment files from drifting away from the
// code, without Docker or a cluster: it parses docker-compose.yml, the
// Dockerfile and deploy/temporal/values.yaml, renders the worker's Helm chart
// with bin/helm (`make tools`), and checks them against internal/config's
// Settings table, workflows' names table and the worker's HTTP routes.
package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/workflows"
)

const root = ".."

// libraryVariables are read by libraries the worker uses, not by
// internal/config: the AWS SDK's static credentials, which only the compose
// file may give (local-kms wants some; production uses IAM roles).
var libraryVariables = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}

// runtimeVariables are the Go runtime's: GOMEMLIMIT replaces the worker's
// 150 MiB soft memory limit (app.SetMemoryLimit) where the pod has more.
var runtimeVariables = map[string]bool{"GOMEMLIMIT": true}

// pendingSettings are given to the worker by the deployment files ahead of the
// branches that add them to internal/config (issue 12 was built in parallel
// with them): the public listener, its ingest token, the access connector's
// URL. Once a name is in Settings its entry here is dead: delete it.
var pendingSettings = map[string]string{}

// sqlVisibilityLimits is how many custom search attributes of each type one
// namespace may have on SQL visibility (PostgreSQL), per Temporal's
// documentation of search attributes.
var sqlVisibilityLimits = map[string]int{"Bool": 3, "Datetime": 3, "Double": 3, "Int": 3, "Keyword": 10, "Text": 3, "KeywordList": 3}

func settings() map[string]config.Setting {
	m := make(map[string]config.Setting, len(config.Settings))
	for _, s := range config.Settings {
		m[s.Name] = s
	}
	return m
}

// ---------------------------------------------------------------- images

var digestRef = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// pinned reports why an image reference is not pinned to a version, or "".
func pinned(ref string) string {
	if digestRef.MatchString(ref) {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return "has no tag (means latest)"
	}
	tag := name[i+1:]
	if tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
		return fmt.Sprintf("tag %q is not a version", tag)
	}
	return ""
}

func TestPinnedAcceptsVersionsAndDigestsOnly(t *testing.T) {
	for ref, ok := range map[string]bool{
		"postgres:15.10-bookworm": true, "temporalio/ui:2.42.1": true, "nsmithuk/local-kms:3.11.7": true,
		"ghcr.io/x/dpp@sha256:" + strings.Repeat("a", 64): true, "127.0.0.1:5000/dpp:1.4.0": true,
		"postgres": false, "postgres:latest": false, "caddy:alpine": false, "127.0.0.1:5000/dpp": false,
	} {
		if got := pinned(ref) == ""; got != ok {
			t.Errorf("pinned(%q) = %q, want ok=%v", ref, pinned(ref), ok)
		}
	}
}

// ---------------------------------------------------------------- the worker's environment

// envVar is one variable given to a container: a literal value, or a
// reference to a Secret key.
type envVar struct {
	value     string
	secretRef bool
	optional  bool
}

// checkWorkerEnv checks the environment a deployment gives the worker (or
// `starter setup`, which reads the same): every name is a setting (or a
// library's, or pending), every required one and every one whose default
// points at loopback is given, secrets come from a secret store where asked
// (wantSecretRefs), only settings the config can do without are optional, and
// the literal values load. It returns the loaded configuration.
func checkWorkerEnv(t *testing.T, where string, env map[string]envVar, allowLibrary, wantSecretRefs bool) *config.Config {
	t.Helper()
	known := settings()
	for name, v := range env {
		s, ok := known[name]
		switch {
		case ok:
		case runtimeVariables[name]:
			continue
		case libraryVariables[name]:
			if !allowLibrary {
				t.Errorf("%s: gives %s: no static AWS credentials outside development (IAM roles for service accounts)", where, name)
			}
			continue
		case pendingSettings[name] != "":
			continue
		default:
			t.Errorf("%s: gives %s, which is not a setting in internal/config (`worker -help`)", where, name)
			continue
		}
		if wantSecretRefs && s.Secret && !v.secretRef {
			t.Errorf("%s: %s is a secret but is given as a literal value: take it from the secret store (secretEnv)", where, name)
		}
		if v.optional && (s.Required || loopbackDefault(s)) {
			t.Errorf("%s: %s is optional here, but the worker needs it", where, name)
		}
	}
	for _, s := range config.Settings {
		if _, given := env[s.Name]; given {
			continue
		}
		if s.Required && s.Default == "" {
			t.Errorf("%s: required setting %s is not given", where, s.Name)
		}
		if loopbackDefault(s) {
			t.Errorf("%s: %s is not given, and its default %s is a loopback address, which reaches nothing from a container", where, s.Name, s.Default)
		}
	}
	literal := map[string]string{}
	for name, v := range env {
		if !v.secretRef {
			literal[name] = v.value
		}
	}
	cfg, err := config.Load(func(k string) string { return literal[k] })
	if err != nil {
		t.Errorf("%s: the worker would not start with these values: %v", where, err)
	}
	return cfg
}

// loopbackDefault reports whether a setting's default is a network address on
// loopback: a URL (postgres://...@127.0.0.1:5432/...) or host:port. An e-mail
// address such as dpp@localhost is not one.
func loopbackDefault(s config.Setting) bool {
	host := ""
	if u, err := url.Parse(s.Default); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(s.Default); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func TestLoopbackDefault(t *testing.T) {
	for def, want := range map[string]bool{
		"postgres://postgres@127.0.0.1:5432/dpp?sslmode=disable": true, "127.0.0.1:8088": true,
		"smtp://127.0.0.1:1025": true, "http://localhost:8233": true, "[::1]:7233": true,
		"dpp@localhost": false, "https://slack.com/api/": false, "0.0.0.0:8088": false, "720h": false, "": false,
	} {
		if got := loopbackDefault(config.Setting{Default: def}); got != want {
			t.Errorf("loopbackDefault(%q) = %v, want %v", def, got, want)
		}
	}
}

// listenPort is the port of a listen address such as 0.0.0.0:8088, and whether
// other hosts can reach it.
func listenPort(addr string) (int, bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false, err
	}
	p, err := strconv.Atoi(port)
	ip := net.ParseIP(host)
	return p, err == nil && host != "localhost" && (ip == nil || !ip.IsLoopback()), err
}

// routed reports whether the worker's operator listener serves path (a GET).
func routed(t *testing.T, path string) bool {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"DPP_KMS_KEY_ID": "alias/x", "DPP_SELLER_NAME": "x", "DPP_SELLER_ADDRESS": "x", "DPP_SELLER_VAT_NUMBER": "GB123456789"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &app.App{Config: cfg, Log: zap.NewNop()}
	mux, ok := a.HTTPHandler().(*http.ServeMux)
	if !ok {
		t.Fatalf("app.HTTPHandler is a %T, not a *http.ServeMux: teach routed to find its routes", a.HTTPHandler())
	}
	_, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, path, nil))
	return pattern != ""
}

// ---------------------------------------------------------------- docker-compose.yml

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Entrypoint  []string       `yaml:"entrypoint"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// composeValue resolves compose's interpolation the way `docker compose up`
// does with nothing set in the environment: ${X:-default} is the default.
func composeValue(v any) string {
	s := fmt.Sprint(v)
	s = regexp.MustCompile(`\$\{[A-Z0-9_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
	return strings.ReplaceAll(s, "$$", "$")
}

func TestComposeMatchesTheCode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	// depends_on in short form (a list) would not decode into the map: that
	// is a finding too (every dependency here says what it waits for).
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var migrate, setup, worker string
	for name, svc := range compose.Services {
		where := "docker-compose.yml service " + name
		ours := svc.Build != nil
		switch {
		case svc.Image == "":
			t.Errorf("%s: no image", where)
		case ours:
			// Built from this repository's Dockerfile (checked below).
		default:
			if why := pinned(svc.Image); why != "" {
				t.Errorf("%s: image %s %s", where, svc.Image, why)
			}
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is not bound to 127.0.0.1", where, p)
			}
		}
		if !ours {
			continue
		}
		env := map[string]envVar{}
		for k, v := range svc.Environment {
			env[k] = envVar{value: composeValue(v)}
		}
		program := "worker"
		if len(svc.Entrypoint) > 0 {
			program = filepath.Base(svc.Entrypoint[0])
		}
		if program == "starter" && len(svc.Command) > 0 {
			program += " " + svc.Command[0]
		}
		switch program {
		case "worker":
			worker = name
			cfg := checkWorkerEnv(t, where, env, true, false)
			if svc.Deploy.Replicas < 2 {
				t.Errorf("%s: %d replicas; the issue asks for two, to show the worker scales", where, svc.Deploy.Replicas)
			}
			if cfg != nil {
				grace, err := time.ParseDuration(svc.StopGracePeriod)
				if err != nil || grace <= cfg.WorkerStopTimeout+app.HTTPShutdownTimeout {
					t.Errorf("%s: stop_grace_period %q must exceed DPP_WORKER_STOP_TIMEOUT (%s) + %s", where, svc.StopGracePeriod, cfg.WorkerStopTimeout, app.HTTPShutdownTimeout)
				}
				if _, public, err := listenPort(cfg.HTTPAddr); err != nil || !public {
					t.Errorf("%s: DPP_HTTP_ADDR %s cannot be reached from the other containers (codec proxy)", where, cfg.HTTPAddr)
				}
			}
		case "starter setup":
			setup = name
			checkWorkerEnv(t, where, env, true, false)
		case "starter migrate":
			migrate = name
			for k := range env {
				if k != "DPP_MIGRATIONS_DATABASE_URL" {
					t.Errorf("%s: `starter migrate` reads only DPP_MIGRATIONS_DATABASE_URL, not %s", where, k)
				}
			}
		case "starter sandbox":
		default:
			t.Errorf("%s: runs %q, which this test does not know", where, program)
		}
	}
	if migrate == "" || setup == "" || worker == "" {
		t.Fatalf("docker-compose.yml must run `starter migrate`, `starter setup` (which registers workflows.SearchAttributes and creates workflows.Schedules) and the worker; found %q, %q, %q", migrate, setup, worker)
	}
	if c := compose.Services[setup].DependsOn[migrate].Condition; c != "service_completed_successfully" {
		t.Errorf("docker-compose.yml: %s must wait for %s to complete (condition %q)", setup, migrate, c)
	}
	if c := compose.Services[worker].DependsOn[setup].Condition; c != "service_completed_successfully" {
		t.Errorf("docker-compose.yml: %s must wait for %s to complete (condition %q)", worker, setup, c)
	}
	// The Web UI's codec endpoint is what the browser calls: a published port.
	for name, svc := range compose.Services {
		ep, ok := svc.Environment["TEMPORAL_CODEC_ENDPOINT"]
		if !ok {
			continue
		}
		u, err := url.Parse(composeValue(ep))
		if err != nil || !strings.HasSuffix(u.Path, "/codec") {
			t.Errorf("docker-compose.yml service %s: TEMPORAL_CODEC_ENDPOINT %v is not a codec endpoint", name, ep)
			continue
		}
		published := false
		for _, other := range compose.Services {
			for _, p := range other.Ports {
				published = published || strings.HasPrefix(p, u.Host+":")
			}
		}
		if !published {
			t.Errorf("docker-compose.yml service %s: TEMPORAL_CODEC_ENDPOINT %s: no service publishes %s", name, u, u.Host)
		}
	}
}

// ---------------------------------------------------------------- Dockerfile

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(froms))
	}
	for _, m := range froms {
		if m[1] != "scratch" {
			if why := pinned(m[1]); why != "" {
				t.Errorf("Dockerfile: FROM %s %s", m[1], why)
			}
		}
	}
	if final := froms[len(froms)-1][1]; final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile: the final image is %s; want scratch or distroless/static (no shell)", final)
	}
	for _, want := range []string{
		"CGO_ENABLED=0",
		"github.com/plusranger/dpp/internal/app.Version=",
		"github.com/plusranger/dpp/internal/app.Commit=",
		`CMD ["/usr/local/bin/worker", "-healthcheck"]`,
		`ENTRYPOINT ["/usr/local/bin/worker"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("Dockerfile: the final image must run as a non-root USER, found %v", users)
	}
}

// ---------------------------------------------------------------- the Helm chart

type k8sEnv struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []k8sEnv `yaml:"env"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sPodSpec struct {
	ServiceAccountName            string         `yaml:"serviceAccountName"`
	TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
	Containers                    []k8sContainer `yaml:"containers"`
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas       int `yaml:"replicas"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		// Selector is a Deployment's or a PodDisruptionBudget's.
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func helmBinary(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(root, "bin", "helm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("bin/helm is missing: run `make tools` (it renders deploy/chart without a cluster): %v", err)
	}
	return p
}

// helm is a bin/helm command with its caches and configuration in a temporary
// directory: nothing of the user's is needed.
func helm(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+tmp, "HELM_CONFIG_HOME="+tmp, "HELM_DATA_HOME="+tmp)
	return cmd
}

// render runs `helm template` on the worker chart with the given values files
// (relative to deploy/) and extra --set flags, and returns its objects.
func render(t *testing.T, values []string, set ...string) ([]k8sObject, error) {
	t.Helper()
	args := []string{"template", "dpp", filepath.Join("chart", "dpp-worker"), "--namespace", "dpp"}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := helm(t, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("helm template output: %v", err)
		}
		if o.Kind != "" {
			objs = append(objs, o)
		}
	}
	return objs, nil
}

func containerEnv(c k8sContainer) map[string]envVar {
	env := map[string]envVar{}
	for _, e := range c.Env {
		v := envVar{}
		if e.Value != nil {
			v.value = *e.Value
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			v.secretRef, v.optional = true, e.ValueFrom.SecretKeyRef.Optional
		}
		env[e.Name] = v
	}
	return env
}

// TestChartLints: `helm lint --strict` finds nothing wrong with the chart as
// the production example configures it.
func TestChartLints(t *testing.T) {
	cmd := helm(t, "lint", "--strict", filepath.Join("chart", "dpp-worker"), "-f", filepath.Join("examples", "values-production.yaml"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
}

// TestChartRefusesMissingRequiredSettings: the chart's defaults leave the
// seller's details empty, and rendering says which are missing.
func TestChartRefusesMissingRequiredSettings(t *testing.T) {
	_, err := render(t, nil)
	if err == nil || !strings.Contains(err.Error(), "DPP_SELLER_NAME is required") {
		t.Fatalf("rendering the chart without the seller's details: %v, want an error naming DPP_SELLER_NAME", err)
	}
}

func TestChartMatchesTheCode(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		set    []string
	}{
		{"self-hosted Temporal", []string{"examples/values-production.yaml"}, nil},
		{"Temporal Cloud, API key", []string{"examples/values-production.yaml", "examples/values-temporal-cloud.yaml"}, nil},
		{"Temporal Cloud, mTLS", []string{"examples/values-production.yaml", "examples/values-temporal-cloud.yaml"},
			[]string{"temporalMTLS.enabled=true", "secretEnv.TEMPORAL_API_KEY=null"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, tc.values, tc.set...)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, tc.name, objs)
		})
	}
}

func checkChart(t *testing.T, name string, objs []k8sObject) {
	t.Helper()
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	if len(byKind["Deployment"]) != 1 {
		t.Fatalf("%s: %d Deployments, want the worker's", name, len(byKind["Deployment"]))
	}
	dep := byKind["Deployment"][0]
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: the worker pod has %d containers, want 1", name, len(pod.Containers))
	}
	w := pod.Containers[0]
	where := name + ": Deployment " + dep.Metadata.Name
	env := containerEnv(w)
	cfg := checkWorkerEnv(t, where, env, false, true)

	for _, o := range objs {
		for _, c := range o.Spec.Template.Spec.Containers {
			if why := pinned(c.Image); why != "" {
				t.Errorf("%s: %s %s: image %s %s", name, o.Kind, o.Metadata.Name, c.Image, why)
			}
		}
	}

	// Probes: real routes of the operator listener, on the port it listens on.
	if cfg != nil {
		port, reachable, err := listenPort(cfg.HTTPAddr)
		if err != nil || !reachable {
			t.Errorf("%s: DPP_HTTP_ADDR %s: the kubelet cannot reach it (listen on 0.0.0.0)", where, cfg.HTTPAddr)
		}
		ports := map[string]int{}
		for _, p := range w.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for probeName, p := range map[string]*k8sProbe{"readinessProbe": w.ReadinessProbe, "livenessProbe": w.LivenessProbe, "startupProbe": w.StartupProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s", where, probeName)
				continue
			}
			probePort, ok := p.HTTPGet.Port.(int)
			if !ok {
				probePort = ports[fmt.Sprint(p.HTTPGet.Port)]
			}
			if probePort != port {
				t.Errorf("%s: %s on port %v (%d), the operator listener DPP_HTTP_ADDR is on %d", where, probeName, p.HTTPGet.Port, probePort, port)
			}
			if !routed(t, p.HTTPGet.Path) {
				t.Errorf("%s: %s GET %s: the worker has no such route", where, probeName, p.HTTPGet.Path)
			}
		}
		if p := w.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: readinessProbe %s: /healthz is the endpoint that reports draining", where, p.HTTPGet.Path)
		}
		grace := 30 * time.Second // Kubernetes' default
		if gp := pod.TerminationGracePeriodSeconds; gp != nil {
			grace = time.Duration(*gp) * time.Second
		}
		if grace <= cfg.WorkerStopTimeout+app.HTTPShutdownTimeout {
			t.Errorf("%s: terminationGracePeriodSeconds %s must exceed DPP_WORKER_STOP_TIMEOUT (%s) + %s", where, grace, cfg.WorkerStopTimeout, app.HTTPShutdownTimeout)
		}
	}

	// The Services and the PDB must count the worker's pods and nothing else.
	selects := func(selector, labels map[string]string) bool {
		for k, v := range selector {
			if labels[k] != v {
				return false
			}
		}
		return len(selector) > 0
	}
	if !selects(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: its selector %v does not select its own pods %v", where, dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels)
	}
	for _, pdb := range byKind["PodDisruptionBudget"] {
		if !maps.Equal(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
			t.Errorf("%s: PodDisruptionBudget selects %v, the worker's pods are %v", name, pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels)
		}
	}
	for _, j := range byKind["Job"] {
		if selects(dep.Spec.Selector.MatchLabels, j.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: Job %s's pods carry the worker's selector labels: Services and the PodDisruptionBudget would count them", name, j.Metadata.Name)
		}
	}

	if dep.Spec.Replicas < 2 {
		t.Errorf("%s: %d replicas; a PodDisruptionBudget needs at least 2", where, dep.Spec.Replicas)
	}
	if len(byKind["PodDisruptionBudget"]) != 1 {
		t.Errorf("%s: no PodDisruptionBudget", name)
	}

	// KMS through IAM roles for service accounts.
	sas := byKind["ServiceAccount"]
	if len(sas) != 1 || sas[0].Metadata.Name != pod.ServiceAccountName || sas[0].Metadata.Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("%s: the worker's service account %q needs the eks.amazonaws.com/role-arn annotation (IRSA)", name, pod.ServiceAccountName)
	}

	// The migration before, `starter setup` after every install and upgrade.
	hooks := map[string]string{}
	for _, j := range byKind["Job"] {
		for _, c := range j.Spec.Template.Spec.Containers {
			if len(c.Command) == 1 && filepath.Base(c.Command[0]) == "starter" && len(c.Args) > 0 {
				hooks[c.Args[0]] = j.Metadata.Annotations["helm.sh/hook"]
				jwhere := name + ": Job " + j.Metadata.Name
				switch c.Args[0] {
				case "migrate":
					for k := range containerEnv(c) {
						if k != "DPP_MIGRATIONS_DATABASE_URL" {
							t.Errorf("%s: `starter migrate` reads only DPP_MIGRATIONS_DATABASE_URL, not %s", jwhere, k)
						}
					}
				case "setup":
					checkWorkerEnv(t, jwhere, containerEnv(c), false, true)
				}
			}
		}
	}
	if h := hooks["migrate"]; !strings.Contains(h, "pre-install") || !strings.Contains(h, "pre-upgrade") {
		t.Errorf("%s: `starter migrate` must be a pre-install,pre-upgrade hook Job (got %q)", name, h)
	}
	if h := hooks["setup"]; !strings.Contains(h, "post-install") || !strings.Contains(h, "post-upgrade") {
		t.Errorf("%s: `starter setup` (search attributes, schedules) must be a post-install,post-upgrade hook Job (got %q)", name, h)
	}

	if strings.Contains(name, "Cloud") {
		if v, ok := env["TEMPORAL_API_KEY"]; strings.Contains(name, "API key") && (!ok || !v.secretRef) {
			t.Errorf("%s: TEMPORAL_API_KEY must come from the secret store", where)
		}
		if strings.Contains(name, "mTLS") {
			_, cert := env["TEMPORAL_TLS_CLIENT_CERT_PATH"]
			_, key := env["TEMPORAL_TLS_CLIENT_KEY_PATH"]
			if !cert || !key || len(w.VolumeMounts) == 0 {
				t.Errorf("%s: mTLS needs TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH and the certificate mounted", where)
			}
		}
	}
}

// ---------------------------------------------------------------- the official Temporal chart's values

func TestTemporalValuesMatchTheCode(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("temporal", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Server struct {
			Image  struct{ Repository, Tag string } `yaml:"image"`
			Config struct {
				NumHistoryShards int `yaml:"numHistoryShards"`
				Persistence      map[string]any
				Namespaces       struct {
					Create    bool `yaml:"create"`
					Namespace []struct {
						Name string `yaml:"name"`
					} `yaml:"namespace"`
				} `yaml:"namespaces"`
			} `yaml:"config"`
		} `yaml:"server"`
		Admintools struct {
			Image struct{ Repository, Tag string } `yaml:"image"`
		} `yaml:"admintools"`
		Web struct {
			Image struct{ Repository, Tag string } `yaml:"image"`
		} `yaml:"web"`
		ExtraObjects []k8sObject `yaml:"extraObjects"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("deploy/temporal/values.yaml: %v", err)
	}
	for what, img := range map[string]struct{ Repository, Tag string }{"server": v.Server.Image, "admintools": v.Admintools.Image, "web": v.Web.Image} {
		if why := pinned(img.Repository + ":" + img.Tag); img.Repository == "" || why != "" {
			t.Errorf("deploy/temporal/values.yaml: %s.image %s:%s %s", what, img.Repository, img.Tag, why)
		}
	}
	for _, store := range []string{"default", "visibility"} {
		s, _ := v.Server.Config.Persistence[store].(map[string]any)
		sql, _ := s["sql"].(map[string]any)
		if s["driver"] != "sql" || sql["driver"] != "postgres12" {
			t.Errorf("deploy/temporal/values.yaml: persistence.%s must be PostgreSQL (driver sql, sql.driver postgres12), got %v", store, s)
		}
		if sql["password"] != nil || sql["existingSecret"] == nil {
			t.Errorf("deploy/temporal/values.yaml: persistence.%s: the password comes from existingSecret, never the values", store)
		}
	}
	if v.Server.Config.NumHistoryShards < 512 {
		t.Errorf("deploy/temporal/values.yaml: numHistoryShards %d; deploy/CAPACITY.md asks for 512 (it can never change)", v.Server.Config.NumHistoryShards)
	}

	// The namespace the worker chart connects to exists.
	objs, err := render(t, []string{"examples/values-production.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	var workerNamespace string
	for _, o := range objs {
		if o.Kind == "Deployment" {
			for _, e := range o.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "TEMPORAL_NAMESPACE" && e.Value != nil {
					workerNamespace = *e.Value
				}
			}
		}
	}
	created := v.Server.Config.Namespaces.Create && slices.ContainsFunc(v.Server.Config.Namespaces.Namespace, func(n struct {
		Name string `yaml:"name"`
	}) bool {
		return n.Name == workerNamespace
	})
	if !created {
		t.Errorf("deploy/temporal/values.yaml does not create namespace %q, the worker chart's TEMPORAL_NAMESPACE", workerNamespace)
	}

	// Search attributes: exactly the code's table, within SQL visibility's limits.
	var got []string
	for _, o := range v.ExtraObjects {
		for _, c := range o.Spec.Template.Spec.Containers {
			if pinnedWhy := pinned(c.Image); pinnedWhy != "" {
				t.Errorf("deploy/temporal/values.yaml: extraObjects %s: image %s %s", o.Metadata.Name, c.Image, pinnedWhy)
			}
			for _, e := range c.Env {
				if e.Name == "SEARCH_ATTRIBUTES" && e.Value != nil {
					got = append(got, strings.Fields(*e.Value)...)
				}
				if e.Name == "NAMESPACE" && e.Value != nil && *e.Value != workerNamespace {
					t.Errorf("deploy/temporal/values.yaml: search attributes go to namespace %s, the worker uses %s", *e.Value, workerNamespace)
				}
			}
		}
	}
	if want := workflows.SearchAttributeFlags(); !slices.Equal(got, want) {
		t.Errorf("deploy/temporal/values.yaml registers search attributes %v, workflows.SearchAttributes says %v", got, want)
	}
	flags := workflows.SearchAttributeFlags()
	for _, f := range flags {
		if typ := f[strings.Index(f, "=")+1:]; countType(flags, typ) > sqlVisibilityLimits[typ] {
			t.Errorf("%d search attributes of type %s; SQL visibility allows %d per namespace", countType(flags, typ), typ, sqlVisibilityLimits[typ])
		}
	}
}

func countType(flags []string, typ string) int {
	n := 0
	for _, f := range flags {
		if strings.HasSuffix(f, "="+typ) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- the runbook

// TestRunbookNamesTheSchedules: the schedules `starter setup` creates are the
// ones an operator reads about in deploy/README.md.
func TestRunbookNamesTheSchedules(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range workflows.Schedules {
		if !strings.Contains(string(b), "`"+s.ID+"`") {
			t.Errorf("deploy/README.md does not mention schedule `%s` (%s)", s.ID, s.Workflow)
		}
	}
}
