package ddb

import (
	"context"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Recorder notes which DynamoDB operations a client performed, so tests can check a
// component's code against its Access grant.
type Recorder struct {
	mu  sync.Mutex
	ops map[string]int
}

// Option installs the recorder on a client: dynamodb.NewFromConfig(cfg, rec.Option).
func (r *Recorder) Option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordOperation",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (out middleware.InitializeOutput, md middleware.Metadata, err error) {
				r.mu.Lock()
				if r.ops == nil {
					r.ops = map[string]int{}
				}
				r.ops[middleware.GetOperationName(ctx)]++
				r.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// Operations returns the recorded operation names, sorted.
func (r *Recorder) Operations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.ops))
	for op := range r.ops {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Counts returns how often each operation ran since the last Reset.
func (r *Recorder) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.ops))
	for op, n := range r.ops {
		out[op] = n
	}
	return out
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = nil
}

// Outside returns the recorded operations that component's grant does not permit, sorted.
func (r *Recorder) Outside(component string) []string {
	allowed := Allowed(component)
	var out []string
	for _, op := range r.Operations() {
		if !allowed[op] {
			out = append(out, op)
		}
	}
	return out
}

// Allowed returns the API operations a component's grant permits on some table: its actions,
// and the operations whose required actions it holds.
func Allowed(component string) map[string]bool {
	out := map[string]bool{}
	for _, g := range Access[component] {
		for _, a := range g.Actions {
			out[a] = true
		}
	}
	for op, needs := range OperationActions {
		held := true
		for _, a := range needs {
			held = held && out[a]
		}
		if held {
			out[op] = true
		}
	}
	return out
}
