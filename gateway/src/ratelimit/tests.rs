use super::*;

fn limits(per_second: u32, burst: u32, sessions: u32) -> OperatorLimits {
    OperatorLimits::new(Limits {
        events_per_second: NonZeroU32::new(per_second).unwrap(),
        events_burst: NonZeroU32::new(burst).unwrap(),
        sessions_per_operator: sessions,
        writes_per_second: 10.0,
        touch_grace: Duration::from_secs(1),
    })
}

#[tokio::test(start_paused = true)]
async fn a_flood_is_cut_at_the_burst_and_refills_at_the_rate() {
    let limits = limits(10, 5, 4);
    let alice = limits.open_session(&"alice".into()).unwrap();
    let bob = limits.open_session(&"bob".into()).unwrap();
    let passed = (0..1000).filter(|_| alice.check_event().is_ok()).count();
    assert_eq!(passed, 5, "only the burst passes at once");
    let err = alice.check_event().unwrap_err();
    assert!(err.to_string().starts_with("rate limited: alice"), "{err}");
    assert!(
        bob.check_event().is_ok(),
        "bob is not slowed by alice's flood"
    );
    tokio::time::advance(Duration::from_millis(1000)).await;
    let passed = (0..1000).filter(|_| alice.check_event().is_ok()).count();
    assert_eq!(passed, 5, "a second refills the burst, no more");
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(alice.check_event().is_ok(), "one event per 1/rate");
}

#[tokio::test(start_paused = true)]
async fn sessions_are_counted_per_operator_and_freed_on_drop() {
    let limits = limits(10, 10, 2);
    let alice: Arc<str> = "alice".into();
    let one = limits.open_session(&alice).unwrap();
    let _two = limits.open_session(&alice).unwrap();
    let err = limits.open_session(&alice).err().expect("third refused");
    assert!(
        matches!(err, Error::TooManySessions { limit: 2, .. }),
        "{err}"
    );
    assert!(limits.open_session(&"bob".into()).is_ok());
    drop(one);
    assert!(limits.open_session(&alice).is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_write_budget_is_shared_round_robin() {
    let budget = Arc::new(WriteBudget::new(10.0));
    let counts = Arc::new(Mutex::new([0u32; 3]));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for target in 0..3 {
        let (budget, counts) = (budget.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                budget.acquire().await;
                if start.elapsed() >= Duration::from_secs(3) {
                    return;
                }
                counts.lock().unwrap()[target] += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let counts = *counts.lock().unwrap();
    let total: u32 = counts.iter().sum();
    assert!((29..=31).contains(&total), "10/s for 3 s: {counts:?}");
    for c in counts {
        assert!(
            (9..=11).contains(&c),
            "every target gets its share: {counts:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_one_shot_acts_once_per_cooldown() {
    let cooldowns = Cooldowns::default();
    let cooldown = Duration::from_secs(10);
    assert_eq!(cooldowns.try_start("web", cooldown), Ok(()));
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        cooldowns.try_start("web", cooldown),
        Err(Duration::from_secs(6))
    );
    assert_eq!(cooldowns.try_start("db", cooldown), Ok(()), "per target");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(cooldowns.try_start("web", cooldown), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn an_idle_operator_is_forgotten_only_once_their_burst_has_refilled() {
    let limits = limits(10, 5, 4); // the burst refills in 0.5 s
    let (alice, bob, carol): (Arc<str>, Arc<str>, Arc<str>) =
        ("alice".into(), "bob".into(), "carol".into());
    let _carol = limits.open_session(&carol).unwrap();
    let session = limits.open_session(&alice).unwrap();
    while session.check_event().is_ok() {}
    drop(session);
    let again = limits.open_session(&alice).unwrap();
    assert!(
        again.check_event().is_err(),
        "reconnecting at once does not reset the burst"
    );
    drop(again);

    tokio::time::advance(Duration::from_millis(400)).await;
    drop(limits.open_session(&bob).unwrap());
    assert_eq!(limits.tracked(), 3, "alice's burst is still refilling");

    tokio::time::advance(Duration::from_millis(100)).await;
    let _bob = limits.open_session(&bob).unwrap();
    assert_eq!(
        limits.tracked(),
        2,
        "alice is forgotten, bob and carol are not"
    );

    tokio::time::advance(Duration::from_secs(3600)).await;
    drop(limits.open_session(&bob).unwrap());
    assert_eq!(limits.tracked(), 2, "open sessions keep their operator");
    let alice_again = limits.open_session(&alice).unwrap();
    let passed = (0..100)
        .filter(|_| alice_again.check_event().is_ok())
        .count();
    assert_eq!(passed, 5, "a forgotten operator starts with a full burst");
}
