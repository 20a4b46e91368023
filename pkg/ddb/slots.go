package ddb

import (
	"context"

	"github.com/aws/smithy-go/middleware"

	"github.com/trigger-api/trigger-api/pkg/slots"
)

type slotsKey struct{}

// WithCallSlots makes every call under ctx, by a client of NewClient, hold one of slots (a
// buffered channel: its capacity is how many may run at once) from its start to its answer,
// retries included. A caller's calls past that wait for one of its own to end, or for ctx.
// DynamoDB serves a table's calls from one pool of capacity and connections: this is what keeps
// one tenant's bursts from queueing in front of everyone's calls.
func WithCallSlots(ctx context.Context, slots chan struct{}) context.Context {
	return context.WithValue(ctx, slotsKey{}, slots)
}

var callSlots middleware.InitializeMiddleware = middleware.InitializeMiddlewareFunc("triggerCallSlots",
	func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		slots, err := takeSlot(ctx)
		if err != nil {
			return middleware.InitializeOutput{}, middleware.Metadata{}, err
		}
		defer giveSlot(slots)
		return next.HandleInitialize(ctx, in)
	})

// takeSlot waits for one of ctx's call slots (nothing to wait for without them) and returns
// the slots to give it back to; ctx's error if ctx ends first with none free.
func takeSlot(ctx context.Context) (chan struct{}, error) {
	s := slotsOf(ctx)
	if s == nil {
		return nil, nil
	}
	if !slots.Acquire(ctx, s) {
		return nil, ctx.Err()
	}
	return s, nil
}

// giveSlot gives back what takeSlot took.
func giveSlot(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}

// withCallSlots adds the slots to a client's stack, outermost: the call's span and its
// measured duration are DynamoDB's, without the wait for a slot.
func withCallSlots(stack *middleware.Stack) error {
	return stack.Initialize.Add(callSlots, middleware.Before)
}

// CallSlots is how many calls under ctx may run at once; 0: no bound.
func CallSlots(ctx context.Context) int { return cap(slotsOf(ctx)) }

func slotsOf(ctx context.Context) chan struct{} {
	slots, _ := ctx.Value(slotsKey{}).(chan struct{})
	return slots
}
