package runner_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/worker/runner"
)

func TestReadmeListsSettings(t *testing.T) { configtest.CheckReadme(t, "worker", &runner.Config{}) }
