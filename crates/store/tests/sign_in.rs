//! Sign-in counters and server secrets, on both databases: parallel attempts and several instances
//! on one PostgreSQL get no more password checks than the rules allow.

use domain::sign_in::{Admission, SignInPolicy};
use store::Store;
use time::OffsetDateTime;

testkit::store_tests_on_both!(
    forty_parallel_attempts_get_five_checks,
    a_success_gives_back_its_count_and_the_lock_is_the_pairs_alone,
);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn keys(email: &str, source: &str) -> [String; 3] {
    domain::sign_in::keys(email, source)
}

async fn race(stores: &[Store], keys: &[String; 3], n: usize) -> Vec<Admission> {
    let policy = SignInPolicy::default();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, keys, policy) =
                (stores[i % stores.len()].clone(), keys.clone(), policy.clone());
            tokio::spawn(async move { store.admit_sign_in(&keys, &policy, now()).await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn checks(answers: &[Admission]) -> usize {
    answers.iter().filter(|a| matches!(a, Admission::Check { .. })).count()
}

async fn forty_parallel_attempts_get_five_checks(store: Store) {
    let answers = race(&[store], &keys("admin@carrier.example", "192.0.2.1"), 40).await;
    assert_eq!(checks(&answers), 5, "{answers:?}");
}

async fn a_success_gives_back_its_count_and_the_lock_is_the_pairs_alone(store: Store) {
    let policy = SignInPolicy::default();
    let mine = keys("admin@carrier.example", "192.0.2.1");
    for _ in 0..4 {
        store.admit_sign_in(&mine, &policy, now()).await.unwrap();
    }
    assert!(matches!(
        store.admit_sign_in(&mine, &policy, now()).await.unwrap(),
        Admission::Check { .. }
    ));
    store.settle_sign_in(&mine, true, &policy, now()).await.unwrap();
    // Counted from zero again: five more checks.
    assert_eq!(checks(&race(std::slice::from_ref(&store), &mine, 6).await), 5);
    // Blocked here; the same account from elsewhere is not.
    let elsewhere = keys("admin@carrier.example", "198.51.100.7");
    assert!(matches!(
        store.admit_sign_in(&elsewhere, &policy, now()).await.unwrap(),
        Admission::Check { .. }
    ));
    assert!(matches!(
        store.admit_sign_in(&mine, &policy, now()).await.unwrap(),
        Admission::Refused { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgres_share_the_counters_and_the_secret() {
    let url = testkit::postgres_url().await;
    let a = testkit::migrated_store(&url).await;
    let b = Store::connect(&url).await.unwrap();
    let c = Store::connect(&url).await.unwrap();
    let answers =
        race(&[a.clone(), b.clone(), c.clone()], &keys("ops@carrier.example", "203.0.113.5"), 60)
            .await;
    assert_eq!(checks(&answers), 5, "{answers:?}");
    let (sa, sb, sc) = tokio::join!(
        a.server_secret("login_csrf", "from-a", now()),
        b.server_secret("login_csrf", "from-b", now()),
        c.server_secret("login_csrf", "from-c", now()),
    );
    let (sa, sb, sc) = (sa.unwrap(), sb.unwrap(), sc.unwrap());
    assert!(sa == sb && sb == sc, "{sa} {sb} {sc}");
}
