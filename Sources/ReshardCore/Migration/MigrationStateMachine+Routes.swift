/// What routers do to the moving ranges: the strategy's modes of the phase and the canary's
/// shadow reads, shown to every router through their shared directive.
extension MigrationStateMachine {
    /// The phase whose routes are in force. A paused migration keeps routing as the phase it
    /// paused in (a second write keeps the new owner current, and stopping it would only add to
    /// the catch-up); a failed or rolling-back one before its switch routes like no migration, so
    /// nothing of it reaches clients while an operator decides.
    ///
    /// A strategy that switched first is different: until its copy is verified, the new owners
    /// lack rows and only its modes find them, so a failed migration keeps them, and so does a
    /// rollback until it has published the old layout again (from then on the modes apply to
    /// nothing, as the map names the old owners).
    var routingPhase: MigrationPhase? {
        let switchedFirst = switched && settings.strategyInForce.switchesFirst
        switch phase {
        case .paused: return interrupted
        case .failed where switchedFirst:
            return interrupted == .baking || interrupted == .cleaningUp ? interrupted : .copying
        case .rollingBack where switchedFirst: return .copying
        case .planned, .failed, .rollingBack, .done, .rolledBack: return nil
        default: return phase
        }
    }

    /// What the routers' directive should carry now (nil: nothing, routers route by the map).
    ///
    /// A new owner is allowed to be as far behind as catching up tolerates, or as it is now, plus
    /// a round of tailing (rounds are at most 200 ms apart while the canary runs); rounded up to
    /// half seconds, so the directive is not rewritten every round. The epoch is the number of
    /// verifications: a router that halted on a mismatch reads again only after a new one (and it
    /// matters only to shadow reads and served reads: without them it stays 0, so a verification
    /// does not rewrite the directive). A router that sent its served reads back serves again
    /// only at a new epoch too.
    public var routeDirective: RouteDirective? {
        guard let routingPhase, let step = settings.strategyInForce.step(routingPhase) else { return nil }
        let shadow = canaryReadPercent ?? 0
        let serve = readServePercent.map {
            RouteDirective.ReadServe(
                percent: $0, maxErrorRate: settings.maxReadErrorRate ?? MigrationSettings.defaultMaxReadErrorRate,
                maxLatencyFactor: settings.maxReadLatencyFactor ?? MigrationSettings.defaultMaxReadLatencyFactor)
        }
        guard step.routes != .unchanged || shadow > 0 else { return nil }
        let lag = shadow > 0 ? max(settings.maxLagMillis, forward.values.map(\.lagMillis).max() ?? 0).adding(saturating: 250) : 0
        return RouteDirective(
            migration: id, epoch: shadow > 0 || serve != nil ? verifications : 0, plan: plan, routes: step.routes, shadowPercent: shadow,
            lagAllowanceMillis: lag.adding(saturating: 499) / 500 * 500, serve: serve)
    }

    /// The directive to show, when the routers' may not carry what it should.
    var routeSync: [MigrationWork] {
        let wanted = routeDirective
        return routesStale == true || routesShown != wanted.map(RouteDirective.Shown.init) ? [.showRoutes(wanted)] : []
    }
}
