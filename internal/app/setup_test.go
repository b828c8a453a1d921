package app_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/plusranger/dpp/internal/app"
	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/workflows"
)

// denyOperatorService makes a client's OperatorService calls fail as Temporal
// Cloud answers them: PermissionDenied.
func denyOperatorService(o *client.Options) {
	o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if strings.HasPrefix(method, "/temporal.api.operatorservice.v1.OperatorService/") {
				return status.Error(codes.PermissionDenied, "Request unauthorized.")
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
}

// Issue 8: `starter setup` where the OperatorService is not allowed (Temporal
// Cloud). In a fresh namespace without the search attributes it names each
// missing one with the command that creates it, still creates the schedules and
// fails; once they exist it succeeds, having checked them with visibility queries.
func TestSetupWithoutTheOperatorService(t *testing.T) {
	s := newStack(t, nil)
	ctx := s.ctx()
	ns := "dpp-setup-" + strings.ToLower(strings.ReplaceAll(s.app.Config.TaskQueue[len(s.app.Config.TaskQueue)-8:], "_", "-"))
	_, err := s.app.Temporal.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	s.must(err, "register namespace %s", ns)

	env := maps.Clone(s.env)
	env["TEMPORAL_NAMESPACE"] = ns
	cfg, err := config.Load(func(k string) string { return env[k] })
	s.must(err, "config")
	cloudLike, err := app.New(ctx, cfg, app.Options{Logger: zap.NewNop(), TemporalClientOptions: denyOperatorService})
	s.must(err, "app in %s", ns)
	defer cloudLike.Close()
	// A new namespace takes a moment to reach every service of the dev server.
	for {
		_, err := cloudLike.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace %s never answered: %v", ns, err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	report, missingErr := cloudLike.Setup(ctx)
	err = missingErr
	if !errors.Is(err, app.ErrSearchAttributesMissing) {
		t.Fatalf("want ErrSearchAttributesMissing, got %v\n%s", err, strings.Join(report, "\n"))
	}
	text := strings.Join(report, "\n")
	t.Logf("setup said:\n%s\n%v", text, err)
	if !strings.Contains(text, "PermissionDenied, as on Temporal Cloud") {
		t.Errorf("the report does not say why setup cannot add them:\n%s", text)
	}
	for _, k := range workflows.SearchAttributes {
		name, typ := k.GetName(), k.GetValueType().String()
		for _, want := range []string{
			"tcld namespace search-attributes add --namespace " + ns + " --search-attribute " + name + "=" + typ,
			"temporal operator search-attribute create --namespace " + ns + " --name " + name + " --type " + typ,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the report lacks %q:\n%s", want, text)
			}
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	for _, sc := range workflows.Schedules {
		if _, err := cloudLike.Temporal.ScheduleClient().GetHandle(ctx, sc.ID).Describe(ctx); err != nil {
			t.Errorf("schedule %s was not created: %v", sc.ID, err)
		}
	}

	// Where listing is allowed and only adding is refused, setup knows what is
	// missing without asking visibility, and says the same.
	listOnly, err := app.New(ctx, cfg, app.Options{Logger: zap.NewNop(), TemporalClientOptions: func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if strings.HasSuffix(method, "/AddSearchAttributes") {
					return status.Error(codes.PermissionDenied, "Request unauthorized.")
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			}))
	}})
	s.must(err, "list-only app")
	defer listOnly.Close()
	report2, err2 := listOnly.Setup(ctx)
	if !errors.Is(err2, app.ErrSearchAttributesMissing) || err2.Error() != missingErr.Error() || report2[0] != report[0] {
		t.Fatalf("list allowed, add refused: %v\n%s", err2, strings.Join(report2, "\n"))
	}

	// An administrator creates them (here through the OperatorService the
	// stack's own client may use); setup, still without it, is then content.
	req := &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: map[string]enumspb.IndexedValueType{}}
	for _, k := range workflows.SearchAttributes {
		req.SearchAttributes[k.GetName()] = k.GetValueType()
	}
	_, err = s.app.Temporal.OperatorService().AddSearchAttributes(ctx, req)
	s.must(err, "add search attributes")
	for {
		report, err = cloudLike.Setup(ctx)
		if err == nil || !errors.Is(err, app.ErrSearchAttributesMissing) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("setup still finds attributes missing: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.must(err, "setup once the attributes exist")
	if want := "search attributes: 5 present (checked with visibility queries"; !strings.HasPrefix(report[0], want) {
		t.Fatalf("report %q, want it to start %q", report[0], want)
	}
	for _, sc := range workflows.Schedules {
		s.must(cloudLike.Temporal.ScheduleClient().GetHandle(ctx, sc.ID).Delete(ctx), "delete schedule %s", sc.ID)
	}
}
