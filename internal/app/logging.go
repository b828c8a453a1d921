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

// temporalLogger adapts zap to the Temporal SDK's logger.
func temporalLogger(l *zap.Logger) log.Logger {
	return zapAdapter{l.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type zapAdapter struct{ s *zap.SugaredLogger }

func (z zapAdapter) Debug(msg string, kv ...any) { z.s.Debugw(msg, kv...) }
func (z zapAdapter) Info(msg string, kv ...any)  { z.s.Infow(msg, kv...) }
func (z zapAdapter) Warn(msg string, kv ...any)  { z.s.Warnw(msg, kv...) }
func (z zapAdapter) Error(msg string, kv ...any) { z.s.Errorw(msg, kv...) }

// With lets the SDK attach workflow and activity ids to every line.
func (z zapAdapter) With(kv ...any) log.Logger { return zapAdapter{z.s.With(kv...)} }
