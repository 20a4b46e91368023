package ingestapi_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
)

func TestReadmeListsSettings(t *testing.T) { configtest.CheckDocs(t, "ingest", &ingestapi.Config{}) }
