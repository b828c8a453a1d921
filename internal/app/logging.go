package app

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger builds the process logger: JSON for production, console for dev.
// Nothing personal is ever logged; fields carry ids, counts and statuses only.
func NewLogger(format, level string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("DPP_LOG_LEVEL: %w", err)
	}
	cfg := zap.NewProductionConfig()
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// temporalLogger adapts zap to the Temporal SDK's logger. The caller a line
// names is the code that logged, not this adapter: the adapter skips its own
// frame, and implements log.WithSkipCallers so that the SDK's wrappers (the
// workflow logger that drops lines during replay) skip theirs, and a workflow's
// `workflow.GetLogger(ctx).Info` names the workflow's file and line.
func temporalLogger(l *zap.Logger) log.Logger {
	return zapAdapter{l.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type zapAdapter struct{ s *zap.SugaredLogger }

var (
	_ log.Logger          = zapAdapter{}
	_ log.WithLogger      = zapAdapter{}
	_ log.WithSkipCallers = zapAdapter{}
)

// WithCallerSkip returns a logger that skips depth more stack frames when it
// names the caller; the SDK calls it for its own wrappers.
func (z zapAdapter) WithCallerSkip(depth int) log.Logger {
	return zapAdapter{z.s.WithOptions(zap.AddCallerSkip(depth))}
}

func (z zapAdapter) Debug(msg string, kv ...any) { z.s.Debugw(msg, kv...) }
func (z zapAdapter) Info(msg string, kv ...any)  { z.s.Infow(msg, kv...) }
func (z zapAdapter) Warn(msg string, kv ...any)  { z.s.Warnw(msg, kv...) }
func (z zapAdapter) Error(msg string, kv ...any) { z.s.Errorw(msg, kv...) }

// With lets the SDK attach workflow and activity ids to every line.
func (z zapAdapter) With(kv ...any) log.Logger { return zapAdapter{z.s.With(kv...)} }
