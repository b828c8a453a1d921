package activities

import (
	"context"
	"reflect"
	"testing"

	"go.temporal.io/sdk/activity"
)

// recorder is a worker.ActivityRegistry that keeps what a concern registers.
type recorder struct {
	registered []any
	options    []activity.RegisterOptions
}

func (r *recorder) RegisterActivity(a any) {
	r.RegisterActivityWithOptions(a, activity.RegisterOptions{})
}
func (r *recorder) RegisterActivityWithOptions(a any, o activity.RegisterOptions) {
	r.registered = append(r.registered, a)
	r.options = append(r.options, o)
}
func (r *recorder) RegisterDynamicActivity(any, activity.DynamicRegisterOptions) {}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// A concern registers itself as a struct with SkipInvalidStructFunctions, so
// that Register is not taken for an activity. That option would also skip, in
// silence, an activity whose signature is wrong: every exported method other
// than Register must be a valid activity.
func TestEveryActivityRegistered(t *testing.T) {
	for name, register := range map[string]func(*recorder) any{
		"Lifecycle":     func(r *recorder) any { a := &Lifecycle{}; a.Register(r); return a },
		"Retention":     func(r *recorder) any { a := &Retention{}; a.Register(r); return a },
		"Sync":          func(r *recorder) any { a := &Sync{}; a.Register(r); return a },
		"Access":        func(r *recorder) any { a := &Access{}; a.Register(r); return a },
		"Incident":      func(r *recorder) any { a := &Incident{}; a.Register(r); return a },
		"KeyEpochs":     func(r *recorder) any { a := &KeyEpochs{}; a.Register(r); return a },
		"Notifications": func(r *recorder) any { a := &Notifications{}; a.Register(r); return a },
		"TaxUpload":     func(r *recorder) any { a := &TaxUpload{}; a.Register(r); return a },
	} {
		var r recorder
		concern := register(&r)
		if len(r.registered) != 1 || r.registered[0] != concern || !r.options[0].SkipInvalidStructFunctions {
			t.Fatalf("%s.Register registered %v, want the concern itself", name, r.registered)
		}
		typ := reflect.TypeOf(concern)
		activities := 0
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			if m.Name == "Register" {
				continue
			}
			ft := m.Type // receiver first
			okIn := ft.NumIn() >= 2 && ft.In(1) == contextType
			okOut := (ft.NumOut() == 1 && ft.Out(0) == errorType) || (ft.NumOut() == 2 && ft.Out(1) == errorType)
			if !okIn || !okOut {
				t.Errorf("%s.%s is exported but no activity (func(context.Context, ...) (T, error)): Register would skip it in silence", name, m.Name)
			}
			activities++
		}
		if activities == 0 {
			t.Errorf("%s has no activities", name)
		}
	}
}
