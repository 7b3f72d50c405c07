//! Zoom trunks and the customer → trunk binding (issue 7). Destinations are stored one per line.

use super::{DialectStore, Result};
use domain::trunk::{NumberingRule, SipDestination, TrunkName, ZoomTrunk};
use domain::CustomerId;
use time::OffsetDateTime;

pub(crate) struct TrunkRow {
    name: String,
    destinations: String,
    country_code: String,
    national_prefix: String,
    international_prefix: String,
    created_at: OffsetDateTime,
}

impl TrunkRow {
    fn into_trunk(self) -> Result<ZoomTrunk> {
        let bad = |e: domain::trunk::TrunkError| {
            sqlx::Error::Decode(format!("trunk {:?} in the database: {e}", self.name).into())
        };
        Ok(ZoomTrunk {
            name: TrunkName::parse(&self.name).map_err(bad)?,
            destinations: self
                .destinations
                .lines()
                .map(SipDestination::parse)
                .collect::<std::result::Result<_, _>>()
                .map_err(bad)?,
            numbering: NumberingRule::new(
                &self.country_code,
                &self.national_prefix,
                &self.international_prefix,
            )
            .map_err(bad)?,
            created_at: self.created_at,
        })
    }
}

fn join(destinations: &[SipDestination]) -> String {
    destinations.iter().map(SipDestination::as_str).collect::<Vec<_>>().join("\n")
}

impl DialectStore {
    pub async fn insert_trunk(&self, t: &ZoomTrunk) -> Result<()> {
        let (name, destinations) = (t.name.as_str(), join(&t.destinations));
        let (cc, np, ip) = (
            t.numbering.country_code(),
            t.numbering.national_prefix(),
            t.numbering.international_prefix(),
        );
        sqlx::query!(
            "INSERT INTO zoom_trunks (name, destinations, country_code, national_prefix, international_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            name, destinations, cc, np, ip, t.created_at
        )
        .execute(self.writer())
        .await
        .map(|_| ())
    }

    pub async fn list_trunks(&self) -> Result<Vec<ZoomTrunk>> {
        let rows = sqlx::query_as!(
            TrunkRow,
            r#"SELECT name AS "name!", destinations, country_code, national_prefix, international_prefix, created_at AS "created_at!: OffsetDateTime" FROM zoom_trunks ORDER BY name"#
        )
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(TrunkRow::into_trunk).collect()
    }

    pub async fn get_trunk(&self, name: &TrunkName) -> Result<Option<ZoomTrunk>> {
        let name = name.as_str();
        let row = sqlx::query_as!(
            TrunkRow,
            r#"SELECT name AS "name!", destinations, country_code, national_prefix, international_prefix, created_at AS "created_at!: OffsetDateTime" FROM zoom_trunks WHERE name = $1"#,
            name
        )
        .fetch_optional(self.reader())
        .await?;
        row.map(TrunkRow::into_trunk).transpose()
    }

    /// Replaces a trunk's destinations and numbering rule; false if there is no such trunk.
    pub async fn update_trunk(&self, t: &ZoomTrunk) -> Result<bool> {
        let (name, destinations) = (t.name.as_str(), join(&t.destinations));
        let (cc, np, ip) = (
            t.numbering.country_code(),
            t.numbering.national_prefix(),
            t.numbering.international_prefix(),
        );
        let done = sqlx::query!(
            "UPDATE zoom_trunks SET destinations = $1, country_code = $2, national_prefix = $3, international_prefix = $4 WHERE name = $5",
            destinations, cc, np, ip, name
        )
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a trunk no customer uses; false if it does not exist or a customer still uses it.
    pub async fn delete_trunk(&self, name: &TrunkName) -> Result<bool> {
        let name = name.as_str();
        let done = sqlx::query!("DELETE FROM zoom_trunks WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM customers WHERE zoom_trunk = $2)", name, name)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn customers_on_trunk(&self, name: &TrunkName) -> Result<i64> {
        let name = name.as_str();
        sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "count!: i64" FROM customers WHERE zoom_trunk = $1"#,
            name
        )
        .fetch_one(self.reader())
        .await
    }

    /// Binds a customer to a trunk (or to none); false if there is no such customer. An unknown
    /// trunk is refused by the foreign key.
    pub async fn set_customer_trunk(
        &self,
        id: CustomerId,
        trunk: Option<&TrunkName>,
    ) -> Result<bool> {
        let trunk = trunk.map(TrunkName::as_str);
        let db_id = id.as_uuid();
        let done = sqlx::query!("UPDATE customers SET zoom_trunk = $1 WHERE id = $2", trunk, db_id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
