// Profile and preferences (/settings/profile): profile, preferences, data export, account erasure.
import { usePage } from '@/app/usePage';
import { DangerZoneSection, DataSection } from './DataSection';
import { PreferencesSection } from './PreferencesSection';
import { ProfileSection } from './ProfileSection';
import { SettingsLayout } from './SettingsLayout';

export function ProfilePage() {
  const headingRef = usePage('Profile and preferences');
  return (
    <SettingsLayout title="Profile and preferences" headingRef={headingRef}>
      <ProfileSection />
      <PreferencesSection />
      <DataSection />
      <DangerZoneSection />
    </SettingsLayout>
  );
}
