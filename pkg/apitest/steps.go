package apitest

import "testing"

// Step is one step of a sequence whose steps build on the ones before.
type Step struct {
	Name string
	Run  func(*testing.T)
}

// RunSteps runs steps in order, each as a subtest. A step that stopped short (t.FailNow) ends
// the sequence, since the steps after it need what it did not finish; one that only reported
// errors lets the rest run and report theirs.
func RunSteps(t *testing.T, steps ...Step) {
	t.Helper()
	for _, s := range steps {
		finished := false
		t.Run(s.Name, func(t *testing.T) {
			s.Run(t)
			finished = true
		})
		if !finished {
			return
		}
	}
}
