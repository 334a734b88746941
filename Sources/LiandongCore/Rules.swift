/// Tiers of the escalation ladder, lowest first.
public enum Tier: String, Sendable, CaseIterable, Codable, Comparable {
    case village, township, county

    public static func < (a: Tier, b: Tier) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Correlation parameters of one incident category.
public struct CategoryRule: Sendable, Equatable {
    /// Two events join when within this many metres of each other ...
    public var radiusMeters: Double
    /// ... and within this many seconds of observed time.
    public var windowSeconds: Double
    /// No two events of one incident farther apart than this (nil: 2 x radius; 0: unbounded).
    public var maxSpanMeters: Double?
    /// An incident's observed times within this many seconds (nil: 4 x window; 0: unbounded).
    public var maxDurationSeconds: Double?

    public init(radiusMeters: Double, windowSeconds: Double, maxSpanMeters: Double? = nil, maxDurationSeconds: Double? = nil) {
        self.radiusMeters = radiusMeters
        self.windowSeconds = windowSeconds
        self.maxSpanMeters = maxSpanMeters
        self.maxDurationSeconds = maxDurationSeconds
    }

    /// The span bound in effect (0: unbounded).
    public var maxSpan: Double { maxSpanMeters ?? 2 * radiusMeters }
    /// An event within the radius of an incident's events joins it only when it lies within this
    /// many metres of the incident's centre (the mean position of its events, 0.7 x the radius) or
    /// of one of its events (`linkMeters`). One incident's events lie within about 0.6 x the radius
    /// of its centre (cameras up to a third of the radius from the spot they watch); an event of a
    /// second incident 1.25 x the radius away, seen by cameras up to 0.25 x the radius off, lies at
    /// least 0.75 x the radius from the first one's centre and events: the two stay two.
    public var centreMeters: Double { Self.centreFraction * radiusMeters }
    public static let centreFraction = 0.7
    /// ... or within this many metres of one of its events (0.6 x the radius): a crowd moving
    /// along a street is followed step by step, up to max_span_m.
    public var linkMeters: Double { Self.linkFraction * radiusMeters }
    public static let linkFraction = 0.6
    /// The duration bound in effect (0: unbounded).
    public var maxDuration: Double { maxDurationSeconds ?? 4 * windowSeconds }
}

/// Where a category's tasks go: the departments to involve and the starting tier by priority
/// (minor -> the grid's village, serious -> township, critical -> county).
public struct Route: Sendable, Equatable {
    public var departments: [String]
    /// Starting tier for priority 1...4.
    public var startTiers: [Tier]

    public init(departments: [String], startTiers: [Tier] = Route.defaultStartTiers) {
        precondition(startTiers.count == 4, "one tier per priority 1...4")
        self.departments = departments
        self.startTiers = startTiers
    }

    public func startTier(priority: Int) -> Tier { startTiers[min(max(priority, 1), 4) - 1] }

    public static let defaultStartTiers: [Tier] = [.county, .township, .village, .village]
}

/// Response and resolution deadlines of one tier, indexed by priority 1...4.
public struct SLA: Sendable, Equatable {
    public var respondMinutes: [Double]
    public var resolveMinutes: [Double]

    public init(respondMinutes: [Double], resolveMinutes: [Double]) {
        precondition(respondMinutes.count == 4 && resolveMinutes.count == 4, "one deadline per priority 1...4")
        self.respondMinutes = respondMinutes
        self.resolveMinutes = resolveMinutes
    }

    public func respondSeconds(priority: Int) -> Double { respondMinutes[min(max(priority, 1), 4) - 1] * 60 }
    public func resolveSeconds(priority: Int) -> Double { resolveMinutes[min(max(priority, 1), 4) - 1] * 60 }
}

/// Every rule the correlator and the emission policy use. Each has a default that works with no
/// configuration; the config file overrides it.
public struct Rules: Sendable, Equatable {
    /// Per-category correlation and routing; categories not listed use `defaultCategory`.
    public var categories: [String: CategoryRule]
    public var defaultCategory: CategoryRule
    /// GB/T 28181 "alarm_method/alarm_type" (e.g. "5/6") or "alarm_method" -> incident category.
    public var alarmCategories: [String: String]
    /// Category for alarm codes not in `alarmCategories`.
    public var unmappedAlarmCategory: String
    /// Report category (as sent, lower-cased) -> incident category; unlisted ones pass unchanged.
    public var reportCategories: [String: String]
    /// A report alone at this severity or more urgent (1 = most urgent) gets a `dispatch` task.
    public var dispatchSeverity: Int
    /// Deadlines per tier.
    public var sla: [Tier: SLA]
    /// Per-category routing; categories not listed use `defaultRoute`.
    public var routes: [String: Route]
    public var defaultRoute: Route
    /// Optional working hours for deadlines (nil: around the clock).
    public var calendar: WorkingCalendar?
    /// Per-camera priority demotion (device_id -> steps towards 4), for cameras with many false alarms.
    public var cameraDemotion: [String: Int]
    /// Seconds a camera's video-lost or tamper alarm inhibits its analytics alarms (0: never).
    public var inhibitSeconds: Double = 600
    /// At most one evidence `update` per task within this many seconds, unless material (0: every
    /// new evidence at once). The counts held back go out when it has passed (tasks.update_due_at).
    public var updateIntervalSeconds: Double = 30
    /// workers.presence_s: a grid worker last seen on duty longer ago is not suggested for a task.
    public var workerPresenceSeconds: Double = 300

    public init(
        categories: [String: CategoryRule] = Rules.defaultCategories,
        defaultCategory: CategoryRule = CategoryRule(radiusMeters: 300, windowSeconds: 900),
        alarmCategories: [String: String] = Rules.defaultAlarmCategories,
        unmappedAlarmCategory: String = "other",
        reportCategories: [String: String] = Rules.defaultReportCategories,
        dispatchSeverity: Int = 2,
        sla: [Tier: SLA] = Rules.defaultSLA,
        routes: [String: Route] = Rules.defaultRoutes,
        defaultRoute: Route = Route(departments: ["police"]),
        calendar: WorkingCalendar? = nil,
        cameraDemotion: [String: Int] = [:]
    ) {
        self.categories = categories
        self.defaultCategory = defaultCategory
        self.alarmCategories = alarmCategories
        self.unmappedAlarmCategory = unmappedAlarmCategory
        self.reportCategories = reportCategories
        self.dispatchSeverity = dispatchSeverity
        self.sla = sla
        self.routes = routes
        self.defaultRoute = defaultRoute
        self.calendar = calendar
        self.cameraDemotion = cameraDemotion
    }

    public func route(for category: String) -> Route { routes[category] ?? defaultRoute }

    /// Alert priority after any per-camera demotion (capped at 4, the least urgent).
    public func alertPriority(_ priority: Int, device: String) -> Int {
        min(4, priority + max(0, cameraDemotion[device] ?? 0))
    }

    /// respond_by and resolve_by for a task given to `tier` at `start`, honouring the calendar.
    public func deadlines(tier: Tier, priority: Int, from start: Double) -> (respondBy: Double, resolveBy: Double) {
        let s = sla(for: tier)
        let respond = s.respondSeconds(priority: priority), resolve = s.resolveSeconds(priority: priority)
        if let calendar, calendar.tiers.contains(tier), priority > calendar.alwaysPriority {
            return (calendar.add(seconds: respond, to: start), calendar.add(seconds: resolve, to: start))
        }
        return (start + respond, start + resolve)
    }

    public func rule(for category: String) -> CategoryRule { categories[category] ?? defaultCategory }

    /// The incident category of a camera alarm. Vendors sometimes concatenate several method
    /// digits ("25"): video analytics (5) wins, then device (2), then the first digit.
    public func category(alarmMethod: Int, alarmType: Int?) -> String {
        for method in Self.alarmMethods(alarmMethod) {
            if let type = alarmType, let c = alarmCategories["\(method)/\(type)"] { return c }
            if let c = alarmCategories["\(method)"] { return c }
        }
        return unmappedAlarmCategory
    }

    /// The methods an AlarmMethod value stands for, the one that counts first: vendors'
    /// concatenated digits ("25") read as video analytics (5), then device (2), then the digits.
    static func alarmMethods(_ alarmMethod: Int) -> [Int] {
        guard alarmMethod > 9 else { return [alarmMethod] }
        let digits = String(alarmMethod).compactMap { $0.wholeNumberValue }
        return [5, 2].filter(digits.contains) + digits
    }

    /// The method that counts of an AlarmMethod value (see `alarmMethods`).
    public static func effectiveAlarmMethod(_ alarmMethod: Int) -> Int { alarmMethods(alarmMethod)[0] }

    /// The incident category of a grid report.
    public func category(report: String) -> String {
        let key = report.lowercased()
        return reportCategories[key] ?? key
    }

    public func sla(for tier: Tier) -> SLA { sla[tier] ?? Rules.defaultSLA[tier]! }

    /// Every category these rules can give an event or name a rule for: what a silence or a
    /// query may ask about (a report's own word outside report_categories stays possible too).
    public var knownCategories: Set<String> {
        Set(categories.keys).union(alarmCategories.values).union(reportCategories.values).union(routes.keys)
            .union([unmappedAlarmCategory])
    }

    public static let defaultCategories: [String: CategoryRule] = [
        "intrusion": CategoryRule(radiusMeters: 300, windowSeconds: 900),
        "crowd": CategoryRule(radiusMeters: 500, windowSeconds: 1800),
        "fire": CategoryRule(radiusMeters: 800, windowSeconds: 1800),
        "fight": CategoryRule(radiusMeters: 300, windowSeconds: 900),
        "traffic": CategoryRule(radiusMeters: 500, windowSeconds: 1200),
        "loitering": CategoryRule(radiusMeters: 200, windowSeconds: 1800),
        "left_object": CategoryRule(radiusMeters: 150, windowSeconds: 1800),
        "theft": CategoryRule(radiusMeters: 300, windowSeconds: 1800),
        "dispute": CategoryRule(radiusMeters: 300, windowSeconds: 3600),
        "public_order": CategoryRule(radiusMeters: 300, windowSeconds: 1800),
        "environment": CategoryRule(radiusMeters: 1000, windowSeconds: 7200),
        "medical": CategoryRule(radiusMeters: 300, windowSeconds: 900),
        "device_fault": CategoryRule(radiusMeters: 50, windowSeconds: 3600),
        "tamper": CategoryRule(radiusMeters: 50, windowSeconds: 3600),
    ]

    /// Departments per category; every category starts minor -> village, serious -> township,
    /// critical -> county unless the config says otherwise (fire starts one tier higher).
    public static let defaultRoutes: [String: Route] = [
        "intrusion": Route(departments: ["police"]),
        "crowd": Route(departments: ["police", "urban_management"]),
        "fire": Route(departments: ["fire", "police", "health"], startTiers: [.county, .county, .township, .village]),
        "fight": Route(departments: ["police", "health"]),
        "traffic": Route(departments: ["traffic_police", "health"]),
        "loitering": Route(departments: ["police"]),
        "left_object": Route(departments: ["police"]),
        "theft": Route(departments: ["police"]),
        "dispute": Route(departments: ["civil_affairs", "judicial", "police"]),
        "public_order": Route(departments: ["police", "urban_management"]),
        "environment": Route(departments: ["environment", "urban_management"]),
        "medical": Route(departments: ["health"]),
        "device_fault": Route(departments: ["video_network"], startTiers: [.township, .township, .township, .township]),
        "tamper": Route(departments: ["video_network", "police"]),
    ]

    /// GB/T 28181 codes (reference/gb28181-alarm.md). Fire/smoke have no standard code; vendors'
    /// own codes can be mapped in the config.
    public static let defaultAlarmCategories: [String: String] = [
        "5/1": "public_order",  // manual
        "5/2": "intrusion",  // moving target
        "5/3": "left_object",
        "5/4": "theft",  // object removed
        "5/5": "intrusion",  // tripwire
        "5/6": "intrusion",
        "5/7": "traffic",  // wrong-way
        "5/8": "loitering",
        "5/9": "crowd",  // flow counting
        "5/10": "crowd",  // density
        "5/11": "public_order",  // video anomaly
        "5/12": "fight",  // fast movement
        "2/2": "tamper",
        "2": "device_fault",
        "6": "device_fault",
    ]

    /// Report categories from grid-worker apps (English keys and common Chinese names).
    public static let defaultReportCategories: [String: String] = [
        "治安隐患": "public_order", "public_order_hazard": "public_order",
        "消防隐患": "fire", "fire_hazard": "fire", "火情": "fire", "smoke": "fire",
        "矛盾纠纷": "dispute", "矛盾纠纷隐患": "dispute", "neighbour_dispute": "dispute", "family_dispute": "dispute",
        "聚集": "crowd", "gathering": "crowd",
        "打架": "fight", "斗殴": "fight",
        "交通事故": "traffic", "traffic_accident": "traffic",
        "盗窃": "theft",
        "闯入": "intrusion", "trespass": "intrusion",
        "环境污染": "environment", "pollution": "environment",
        "医疗": "medical",
    ]

    /// The Chinese name of each default category, for what people read (the report, consoles).
    public static let categoryNames: [String: String] = [
        "intrusion": "闯入", "crowd": "人员聚集", "fire": "火情", "fight": "打架斗殴", "traffic": "交通事故", "loitering": "徘徊",
        "left_object": "遗留物品", "theft": "盗窃", "dispute": "矛盾纠纷", "public_order": "治安隐患", "environment": "环境污染",
        "medical": "医疗救助", "device_fault": "设备故障", "tamper": "视频遮挡/破坏", "other": "其他",
    ]

    /// "闯入 intrusion" for a known category, the category itself otherwise.
    public static func categoryLabel(_ category: String) -> String {
        categoryNames[category].map { "\($0) \(category)" } ?? category
    }

    public static let defaultSLA: [Tier: SLA] = [
        .village: SLA(respondMinutes: [10, 30, 120, 480], resolveMinutes: [60, 240, 1440, 4320]),
        .township: SLA(respondMinutes: [10, 20, 60, 240], resolveMinutes: [60, 180, 720, 2880]),
        .county: SLA(respondMinutes: [5, 15, 30, 120], resolveMinutes: [30, 120, 480, 1440]),
    ]
}
