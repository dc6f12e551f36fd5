// Admin pages: users, experiments (and how they take writes), associations, measure types,
// ingest tokens and the sources MyMonit fetches measures from; one file per tab.

import { Link } from "../../components/ui";
import { useTitle } from "../../hooks";
import { ADMIN_TABS, type AdminTab } from "../../lib/router";
import { AssociationsTab } from "./associations";
import { ExperimentsTab } from "./experiments";
import { IngestTokensTab } from "./ingest-tokens";
import { MeasureTypesTab } from "./measure-types";
import { SourcesTab } from "./sources";
import { UsersTab } from "./users";

export function AdminPage({ tab }: { tab: AdminTab }) {
  const label = ADMIN_TABS.find((t) => t.id === tab)!.label;
  useTitle(`Admin · ${label}`);
  return (
    <div class="page">
      <div class="page-head">
        <h1>Admin</h1>
      </div>
      <nav class="tabs" aria-label="Admin sections">
        {ADMIN_TABS.map((t) => (
          <Link key={t.id} href={`/admin/${t.id}`} class="tab" aria-current={t.id === tab ? "page" : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab === "users" && <UsersTab />}
      {tab === "experiments" && <ExperimentsTab />}
      {tab === "associations" && <AssociationsTab />}
      {tab === "measure-types" && <MeasureTypesTab />}
      {tab === "ingest-tokens" && <IngestTokensTab />}
      {tab === "sources" && <SourcesTab />}
    </div>
  );
}
