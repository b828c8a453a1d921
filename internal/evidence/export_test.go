package evidence

// SetVerifyBatch makes Verify read n entries per query until the returned func
// restores the default; tests use it to cross batch boundaries with few entries.
func SetVerifyBatch(n int) (restore func()) {
	old := verifyBatch
	verifyBatch = n
	return func() { verifyBatch = old }
}
