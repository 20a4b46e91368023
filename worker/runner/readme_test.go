package runner_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/worker/runner"
)

func TestReadmeListsSettings(t *testing.T) { configtest.CheckDocs(t, "worker", &runner.Config{}) }
