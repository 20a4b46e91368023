package tenanttest_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/tenant"
	"github.com/trigger-api/trigger-api/pkg/tenant/tenanttest"
)

func TestMemoryConformance(t *testing.T) {
	tenanttest.Run(t, func(*testing.T) tenant.Store { return tenanttest.NewMemory() })
}
