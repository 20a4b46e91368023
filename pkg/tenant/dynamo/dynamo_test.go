package dynamo_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

func TestConformance(t *testing.T) {
	tenanttest.Run(t, func(t *testing.T) tenant.Store {
		return dynamo.New(shared.Client, shared.Tables(t))
	})
}
