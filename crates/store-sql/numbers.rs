//! Reading the inventory: searches, counts, one number and its history.

use super::rows::{EventRow, NumberRow};
use super::{Db, DialectStore, Result, SUBSTRING_POSITION};
use domain::search::NumberQuery;
use domain::{Number, NumberEvent, NumberId, NumberState};
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

impl DialectStore {
    pub async fn search_numbers(&self, query: &NumberQuery) -> Result<Vec<Number>> {
        let mut q = QueryBuilder::<Db>::new(NumberRow::SELECT);
        q.push(" WHERE 1 = 1");
        if let Some((from, inclusive)) = query.lower_bound() {
            q.push(if inclusive { " AND e164 >= " } else { " AND e164 > " }).push_bind(from);
        }
        if let Some(prefix) = &query.prefix {
            q.push(" AND e164 < ").push_bind(NumberQuery::prefix_upper(prefix));
        }
        if let Some(state) = query.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        if let Some(customer) = query.customer_id {
            q.push(" AND customer_id = ").push_bind(customer.as_uuid());
        }
        if let Some(tag) = &query.tag {
            push_tag_filter(&mut q, tag);
        }
        if let Some(region) = &query.region {
            q.push(" AND region = ").push_bind(region.as_str());
        }
        if let Some(prefixes) = &query.emergency_address_missing {
            super::zoom_facts::push_missing_address_filter(&mut q, prefixes);
        }
        q.push(" ORDER BY e164 LIMIT ").push_bind(i64::from(query.page_size()));
        let rows: Vec<NumberRow> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(NumberRow::into_number).collect()
    }

    pub async fn count_by_state(&self) -> Result<Vec<(NumberState, i64)>> {
        let rows = sqlx::query!(
            r#"SELECT state AS "state!", COUNT(*) AS "count!: i64" FROM numbers GROUP BY state"#
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| NumberState::parse(&r.state).map(|s| (s, r.count)))
            .collect())
    }

    pub async fn get_number(&self, id: NumberId) -> Result<Option<Number>> {
        let id = id.as_uuid();
        let row = select_numbers!("WHERE id = $1", id).fetch_optional(self.reader()).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn get_number_by_e164(&self, e164: &str) -> Result<Option<Number>> {
        let row = select_numbers!("WHERE e164 = $1", e164).fetch_optional(self.reader()).await?;
        row.map(NumberRow::into_number).transpose()
    }

    pub async fn number_events(&self, id: NumberId) -> Result<Vec<NumberEvent>> {
        let id = id.as_uuid();
        let rows = sqlx::query_as!(
            EventRow,
            r#"SELECT number_id AS "number_id!: Uuid", at AS "at!: OffsetDateTime", actor AS "actor!", from_state AS "from_state?", to_state AS "to_state!", reason AS "reason?"
               FROM number_events WHERE number_id = $1 ORDER BY id"#,
            id
        )
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }
}

/// Numbers whose tags include `tag`. A substring test, not LIKE: tags may contain `_`, a LIKE
/// wildcard, and SQLite's LIKE ignores case.
pub(crate) fn push_tag_filter(q: &mut QueryBuilder<'_, Db>, tag: &str) {
    q.push(" AND ")
        .push(SUBSTRING_POSITION)
        .push("(tags, ")
        .push_bind(format!(",{tag},"))
        .push(") > 0");
}
