package inboxapi_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

func TestReadmeListsSettings(t *testing.T) { configtest.CheckDocs(t, "inbox", &inboxapi.Config{}) }
