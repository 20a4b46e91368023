package dynamo_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	"github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/events/eventstest"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T) events.Store {
		return dynamo.New(shared.Client, shared.Tables(t))
	})
}

func TestConcurrentPullers(t *testing.T) {
	t.Parallel()
	eventstest.ConcurrentPullers(t, dynamo.New(shared.Client, shared.Tables(t)), 8, 2000)
}
