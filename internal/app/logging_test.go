package app

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// observed returns the adapter over a zap logger that records callers, and
// the recorded lines.
func observed() (log.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return temporalLogger(zap.New(core, zap.AddCaller())), logs
}

// above is the file:line of the line above its caller.
func above() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line-1)
}

func callers(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, fmt.Sprintf("%s:%d", filepath.Base(e.Caller.File), e.Caller.Line))
	}
	return out
}

// forwarder is a logger wrapper like the SDK's workflow (replay) logger: it
// adds a frame, and passes WithCallerSkip on to what it wraps.
type forwarder struct{ l log.Logger }

func (f forwarder) Debug(msg string, kv ...any) { f.l.Debug(msg, kv...) }
func (f forwarder) Info(msg string, kv ...any)  { f.l.Info(msg, kv...) }
func (f forwarder) Warn(msg string, kv ...any)  { f.l.Warn(msg, kv...) }
func (f forwarder) Error(msg string, kv ...any) { f.l.Error(msg, kv...) }
func (f forwarder) WithCallerSkip(depth int) log.Logger {
	return forwarder{log.Skip(f.l, depth)}
}

func TestSDKLoggerNamesTheCaller(t *testing.T) {
	l, logs := observed()
	var want []string
	l.Info("direct")
	want = append(want, above())
	l.Debug("debug")
	want = append(want, above())
	l.Warn("warn")
	want = append(want, above())
	l.Error("error")
	want = append(want, above())
	log.With(l, "k", "v").Info("with fields") // the activity logger's shape
	want = append(want, above())
	log.Skip(forwarder{log.With(l, "k", "v")}, 1).Info("through a wrapper that skips itself") // the workflow logger's shape
	want = append(want, above())
	if got := callers(logs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("callers %v, want %v", got, want)
	}
}

// logInWorkflow logs from a workflow through the SDK's own workflow logger.
func logInWorkflow(ctx workflow.Context) error {
	workflow.GetLogger(ctx).Info("from the workflow")
	workflowLogLine = above()
	return nil
}

var workflowLogLine string // set by logInWorkflow

// TestSDKWorkflowLoggerNamesTheWorkflow runs a workflow task with the SDK's
// replayer, so the line goes through the SDK's own workflow logger, and checks
// that it names the workflow's code, not the SDK's replay logger or the adapter.
func TestSDKWorkflowLoggerNamesTheWorkflow(t *testing.T) {
	l, logs := observed()
	// Lines logged while replaying go through the same workflow logger as a
	// live task's (fields, replay filter, caller skip), once the replayer is
	// told to keep them. The history is one completed workflow task.
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{EnableLoggingInReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterWorkflowWithOptions(logInWorkflow, workflow.RegisterOptions{Name: "LogInWorkflow"})
	now := timestamppb.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	in, err := converter.GetDefaultDataConverter().ToPayloads()
	if err != nil {
		t.Fatal(err)
	}
	h := &historypb.History{Events: []*historypb.HistoryEvent{
		{EventId: 1, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: "LogInWorkflow"}, TaskQueue: &taskqueuepb.TaskQueue{Name: "q"},
				Input: in, WorkflowTaskTimeout: durationpb.New(10 * time.Second),
			}}},
		{EventId: 2, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{
				TaskQueue: &taskqueuepb.TaskQueue{Name: "q"}, StartToCloseTimeout: durationpb.New(10 * time.Second),
			}}},
		{EventId: 3, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{ScheduledEventId: 2}}},
		{EventId: 4, EventTime: now, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: 2, StartedEventId: 3}}},
	}}
	if err := r.ReplayWorkflowHistory(l, h); err != nil {
		t.Fatal(err)
	}
	lines := logs.FilterMessage("from the workflow")
	if got := callers(lines); len(got) != 1 || got[0] != workflowLogLine {
		t.Fatalf("workflow log line names %v, want [%s]", got, workflowLogLine)
	}
	if f := lines.All()[0].ContextMap()["WorkflowType"]; f != "LogInWorkflow" {
		t.Errorf("WorkflowType field %v: the SDK's fields are lost", f)
	}
}
