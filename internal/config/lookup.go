package config

// Value is one setting's value from getenv, its default when unset, without
// validating the rest: for the container's health probe (`worker -healthcheck`),
// which must answer even when a setting it does not use is wrong.
func Value(getenv func(string) string, name string) string {
	l := newLoader(getenv)
	return l.str(name)
}
